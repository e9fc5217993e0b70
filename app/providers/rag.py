"""Retrieval-augmented answers: an embedded SQLite FTS5 store ranked by BM25, then OpenAI chat.

SQLite ships with Python and needs no server; FTS5's ``bm25()`` is a well-tested ranking.
When chat is unavailable the retrieved passages are still returned, flagged ``degraded``.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import threading
from dataclasses import dataclass
from typing import Any

from ..calls import CallContext, CallSpec, ErrorType, GatewayError, invalid
from .openai_chat import OpenAIChat
from .service import ProviderService

_WORD = re.compile(r"\w+", re.UNICODE)
MAX_DOCUMENTS_PER_CALL = 1000


@dataclass(frozen=True)
class Document:
    id: str
    text: str
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class Passage:
    id: str
    score: float
    text: str


@dataclass(frozen=True)
class RAGAnswer:
    answer: str | None
    sources: list[Passage]
    degraded: bool
    degraded_reason: str | None = None


class DocumentStore:
    """Documents in an FTS5 table; one connection guarded by a lock, used from worker threads."""

    def __init__(self, path: str = ":memory:") -> None:
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS documents USING fts5("
                             "doc_id UNINDEXED, text, metadata UNINDEXED, tokenize='unicode61')")

    def add(self, documents: list[Document]) -> int:
        with self._lock, self._db:
            for doc in documents:
                self._db.execute("DELETE FROM documents WHERE doc_id = ?", (doc.id,))
                self._db.execute("INSERT INTO documents (doc_id, text, metadata) VALUES (?, ?, ?)",
                                 (doc.id, doc.text, json.dumps(doc.metadata or {})))
        return len(documents)

    def search(self, query: str, top_k: int) -> list[Passage]:
        words = _WORD.findall(query)
        if not words:
            return []
        match = " OR ".join('"' + w.replace('"', '""') + '"' for w in words)
        with self._lock:
            rows = self._db.execute(
                "SELECT doc_id, bm25(documents), text FROM documents WHERE documents MATCH ? "
                "ORDER BY bm25(documents) LIMIT ?", (match, top_k)).fetchall()
        return [Passage(str(doc_id), round(-float(score), 6), str(text)) for doc_id, score, text in rows]

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM documents").fetchone()[0])


class RAGService(ProviderService):
    provider = "rag"

    def __init__(self, *args: Any, store: DocumentStore, chat: OpenAIChat, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.store = store
        self.chat = chat

    async def _probe(self, ctx: CallContext) -> object:
        return await asyncio.to_thread(self.store.count)


class RAGIngest(RAGService):
    operation = "ingest"

    def validate(self, documents: list[Document]) -> None:
        if not documents:
            raise invalid("documents must be a non-empty list", 422)
        if len(documents) > MAX_DOCUMENTS_PER_CALL:
            raise invalid(f"at most {MAX_DOCUMENTS_PER_CALL} documents per call", 413)
        for index, doc in enumerate(documents):
            if not doc.id.strip():
                raise invalid(f"documents[{index}].id is empty", 422)
            if not doc.text.strip():
                raise invalid(f"documents[{index}].text is empty", 422)
            if len(doc.text) > self.cfg.max_text_length:
                raise invalid(f"documents[{index}].text has {len(doc.text)} characters; rag accepts at most "
                              f"{self.cfg.max_text_length}", 422)

    async def ingest(self, documents: list[Document]) -> int:
        async def attempt(ctx: CallContext) -> int:
            ctx.characters = sum(len(d.text) for d in documents)
            ctx.documents = len(documents)
            return await asyncio.to_thread(self.store.add, documents)

        return await self.pipeline.call(self.spec(), attempt, validate=lambda: self.validate(documents))


class RAGQuery(RAGService):
    operation = "query"

    def spec(self, model: str | None = None) -> CallSpec:
        return CallSpec(self.provider, self.operation, model, gen_ai_operation="retrieval")

    def validate(self, query: str, top_k: int) -> None:
        if not query.strip():
            raise invalid("query is empty", 422)
        if len(query) > self.cfg.max_text_length:
            raise invalid(f"query has {len(query)} characters; rag accepts at most {self.cfg.max_text_length}", 422)
        if not 1 <= top_k <= 50:
            raise invalid("top_k must be between 1 and 50", 422)

    async def query(self, query: str, top_k: int = 4) -> RAGAnswer:
        """The answer from the passages found; ``degraded`` (no answer) when chat failed."""

        async def retrieve(ctx: CallContext) -> list[Passage]:
            ctx.characters, ctx.queries = len(query), 1
            return await asyncio.to_thread(self.store.search, query, top_k)

        passages = await self.pipeline.call(self.spec(), retrieve, validate=lambda: self.validate(query, top_k))
        budget = self.chat.cfg.max_text_length - len(query) - 200  # keep the chat call valid
        context = "\n\n".join(f"[{p.id}] {p.text}" for p in passages)[:max(0, budget)] or "(no passages found)"
        body = {"messages": [
            {"role": "system", "content": "Answer only from the passages below; cite their ids in brackets.\n\n"
                                          + context},
            {"role": "user", "content": query},
        ]}
        try:
            completion = await self.chat.complete(body)
        except GatewayError as error:
            if error.error_type is ErrorType.INVALID_INPUT:
                raise
            return RAGAnswer(None, passages, True, f"chat unavailable ({error.error_type.value})")
        return RAGAnswer(completion.text, passages, False)

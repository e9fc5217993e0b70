"""Every provider service, built once on the shared pipeline: typed by name, and by key for lookups."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields

import httpx2

from ..calls import ServiceKey
from .base import Pipeline
from .deepgram import DeepgramSTT, DeepgramTTS
from .openai_chat import OpenAIChat, OpenAIEmbeddings
from .rag import DocumentStore, RAGIngest, RAGQuery
from .sarvam import SarvamSTT, SarvamTranslate, SarvamTTS
from .service import ProviderService

ALIASES = {
    "translation": "translate", "text_to_speech": "tts", "text-to-speech": "tts", "speech_to_text": "stt",
    "speech-to-text": "stt", "transcription": "stt", "chat_completion": "chat", "completions": "chat",
    "embedding": "embeddings", "retrieval": "query", "search": "query",
}
"""The seed's operation names, and a few obvious spellings."""


@dataclass(frozen=True)
class Services:
    """One service per provider operation."""

    sarvam_translate: SarvamTranslate
    sarvam_tts: SarvamTTS
    sarvam_stt: SarvamSTT
    deepgram_stt: DeepgramSTT
    deepgram_tts: DeepgramTTS
    openai_chat: OpenAIChat
    openai_embeddings: OpenAIEmbeddings
    rag_ingest: RAGIngest
    rag_query: RAGQuery

    @classmethod
    def build(cls, pipeline: Pipeline, http: Callable[[str], httpx2.AsyncClient], store: DocumentStore,
              ) -> Services:
        """``http(provider)`` is the provider's own connection pool."""

        def pool(provider: str) -> Callable[[], httpx2.AsyncClient]:
            return lambda: http(provider)

        sarvam, deepgram, openai = pool("sarvam"), pool("deepgram"), pool("openai")
        chat = OpenAIChat(pipeline, openai)
        return cls(
            SarvamTranslate(pipeline, sarvam), SarvamTTS(pipeline, sarvam), SarvamSTT(pipeline, sarvam),
            DeepgramSTT(pipeline, deepgram), DeepgramTTS(pipeline, deepgram),
            chat, OpenAIEmbeddings(pipeline, openai),
            RAGIngest(pipeline, openai, store=store, chat=chat),
            RAGQuery(pipeline, openai, store=store, chat=chat),
        )

    def __iter__(self) -> Iterator[ProviderService]:
        for field in fields(self):
            service: ProviderService = getattr(self, field.name)
            yield service

    def by_key(self) -> dict[ServiceKey, ProviderService]:
        return {ServiceKey(s.provider, s.operation): s for s in self}

    def speech(self, provider: str) -> tuple[SarvamTTS | DeepgramTTS, SarvamSTT | DeepgramSTT]:
        """A speech provider's TTS and STT (``sarvam`` or ``deepgram``)."""
        if provider == "sarvam":
            return self.sarvam_tts, self.sarvam_stt
        return self.deepgram_tts, self.deepgram_stt


def operation_name(operation: str) -> str:
    """Our name for an operation (the seed's names accepted)."""
    return ALIASES.get(operation.lower(), operation.lower())

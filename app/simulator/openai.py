"""OpenAI (https://api.openai.com/v1): chat completions (JSON and SSE), embeddings, and the models list.

Errors are ``{"error": {"message", "type", "param", "code"}}``; missing credentials are a 401 ``invalid_api_key``.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

from litestar import Response, Router, get, post
from litestar.di import NamedDependency

from app.simulator import content
from app.simulator.gate import AnyConnection, AnyRequest, ProviderWire, admit, json_response, stream_response
from app.simulator.payload import InvalidRequest, json_object
from app.simulator.state import SimulatorState
from app.wire.openai import OPENAI_ERRORS, new_request_id, openai_error

MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "text-embedding-3-small", "text-embedding-3-large")
EMBEDDING_DIMENSIONS = {"text-embedding-3-large": 3072}
DEFAULT_EMBEDDING_DIMENSIONS = 1536
MODELS_CREATED = 1_700_000_000
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})

def _authorized(request: AnyConnection) -> bool:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(key.strip())


class _BadParam(InvalidRequest):
    """An invalid request parameter, named in the error's ``param``."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


def _invalid(exc: InvalidRequest) -> Response[Any]:
    return openai_error(400, str(exc), param=exc.param if isinstance(exc, _BadParam) else None)


OPENAI = ProviderWire(OPENAI_ERRORS, _authorized, invalid=_invalid)


def _message_text(message: Any) -> str:
    """The text of a message whose content is a string or a list of content parts."""
    value = message.get("content")
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return " ".join(part.get("text", "") for part in value if isinstance(part, dict))
    return ""


def _chat_request(body: dict[str, Any]) -> tuple[str, list[dict[str, Any]], int | None]:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _BadParam("model", "you must provide a model parameter")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _BadParam("messages", "'messages' must be a non-empty array of message objects.")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise _BadParam(f"messages[{index}]", f"Invalid value for 'messages[{index}].role'.")
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise _BadParam("max_tokens", "max_tokens must be a positive integer.")
    return model, messages, limit


@post("/v1/chat/completions", include_in_schema=False)
async def chat_completions(request: AnyRequest, sim_state: NamedDependency[SimulatorState]) -> Response[Any]:
    gate = await admit(request, sim_state, OPENAI, "chat")
    body = json_object(await request.body())
    model, messages, limit = _chat_request(body)
    last_user: dict[str, Any] = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    pieces = content.reply_pieces(content.chat_reply(_message_text(last_user)))
    finish = "stop"
    if limit is not None and len(pieces) > limit:  # one piece per word: a fair stand-in for the token budget
        pieces, finish = pieces[:limit], "length"
    reply = "".join(pieces)
    prompt_tokens = sum(content.count_tokens(_message_text(m)) + 4 for m in messages) + 3
    completion_tokens = content.count_tokens(reply)
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    head = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "created": int(time.time()), "model": model}
    if body.get("stream") is True:
        stream_options = body.get("stream_options") or {}
        include_usage = isinstance(stream_options, dict) and stream_options.get("include_usage") is True
        events = _chat_events(head, pieces, finish, usage if include_usage else None, gate.malformed)
        return stream_response(
            events, gate, media_type="text/event-stream", headers={"x-request-id": new_request_id()}
        )
    completion = {
        **head,
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": finish,
            }
        ],
        "usage": usage,
        "system_fingerprint": "fp_simulator",
    }
    return json_response(completion, gate, headers={"x-request-id": new_request_id()})


def _chat_events(
    head: dict[str, Any], pieces: list[str], finish: str, usage: dict[str, int] | None, malformed: bool
) -> list[bytes]:
    """The SSE events of a streamed completion: role, one delta per piece, finish reason, optional usage, [DONE]."""
    chunk = {**head, "object": "chat.completion.chunk", "system_fingerprint": "fp_simulator"}
    if usage is not None:
        chunk["usage"] = None

    def choice(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            **chunk,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }

    payloads = [choice({"role": "assistant", "content": "", "refusal": None})]
    payloads += [choice({"content": piece}) for piece in pieces]
    payloads.append(choice({}, finish))
    if usage is not None:
        payloads.append({**chunk, "choices": [], "usage": usage})
    events = [json.dumps(payload, ensure_ascii=False, separators=(",", ":")) for payload in payloads]
    if malformed:
        events = [event[: len(event) // 2] for event in events]
    return [f"data: {event}\n\n".encode() for event in [*events, "[DONE]"]]


def _is_token_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(type(v) is int for v in value)


def _embedding_inputs(value: Any) -> list[list[str]]:
    """Each input as the tokens its vector is built from: a string's words, or a token array's numbers."""
    if isinstance(value, str) or _is_token_array(value):
        value = [value]
    if not isinstance(value, list) or not value:
        raise _BadParam(
            "input", "'input' must be a non-empty string, array of strings, or array of token arrays."
        )
    inputs = []
    for item in value:
        if isinstance(item, str) and item:
            inputs.append(content.text_tokens(item) or [item])
        elif _is_token_array(item):
            inputs.append([f"#{token}" for token in item])
        else:
            raise _BadParam(
                "input", "'$.input' is invalid: every input must be a non-empty string or token array."
            )
    return inputs


@post("/v1/embeddings", include_in_schema=False)
async def embeddings(request: AnyRequest, sim_state: NamedDependency[SimulatorState]) -> Response[Any]:
    gate = await admit(request, sim_state, OPENAI, "embeddings")
    body = json_object(await request.body())
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _BadParam("model", "you must provide a model parameter")
    inputs = _embedding_inputs(body.get("input"))
    native = EMBEDDING_DIMENSIONS.get(model, DEFAULT_EMBEDDING_DIMENSIONS)
    dimensions = body.get("dimensions", native)
    if not isinstance(dimensions, int) or isinstance(dimensions, bool) or not 1 <= dimensions <= native:
        raise _BadParam("dimensions", f"'dimensions' must be an integer between 1 and {native}.")
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise _BadParam("encoding_format", "'encoding_format' must be 'float' or 'base64'.")
    data = []
    for index, tokens in enumerate(inputs):
        vector = content.embedding(tokens, dimensions)
        encoded: Any = (
            base64.b64encode(content.float32_le(vector)).decode() if encoding == "base64" else vector
        )
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens_used = sum(len(tokens) for tokens in inputs)
    result = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens_used, "total_tokens": tokens_used},
    }
    return json_response(result, gate, headers={"x-request-id": new_request_id()})


@get("/v1/models", include_in_schema=False)
async def models(request: AnyRequest, sim_state: NamedDependency[SimulatorState]) -> Response[Any]:
    gate = await admit(request, sim_state, OPENAI, "health")
    data = [
        {"id": model, "object": "model", "created": MODELS_CREATED, "owned_by": "system"} for model in MODELS
    ]
    return json_response({"object": "list", "data": data}, gate, headers={"x-request-id": new_request_id()})


def openai_router() -> Router:
    return OPENAI.router("/openai", [chat_completions, embeddings, models])

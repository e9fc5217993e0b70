"""OpenAI routes over HTTP: chat (JSON and SSE), embeddings, models, and their errors."""

from __future__ import annotations

import base64
import json
import math
import struct
from typing import Any

import httpx
import pytest

from tests.simulator.helpers import OPENAI

CHAT = "/_sim/openai/v1/chat/completions"
EMBEDDINGS = "/_sim/openai/v1/embeddings"
MODELS = "/_sim/openai/v1/models"
MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is the capital of India?"},
]


def assert_openai_error(response: httpx.Response, status: int, kind: str, code: str | None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == kind
    assert error["code"] == code
    assert error["message"]
    return error


def sse_events(raw: str) -> list[str]:
    assert raw.endswith("\n\n")
    events = raw.strip("\n").split("\n\n")
    assert all(event.startswith("data: ") for event in events)
    return [event.removeprefix("data: ") for event in events]


def test_chat_completion(client: httpx.Client) -> None:
    response = client.post(CHAT, json={"model": "gpt-4o-mini", "messages": MESSAGES}, headers=OPENAI)
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"].startswith("req_")
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == "gpt-4o-mini"
    assert isinstance(body["created"], int)
    (choice,) = body["choices"]
    assert choice == {
        "index": 0,
        "message": {
            "role": "assistant",
            "content": "Simulated reply to: What is the capital of India?",
            "refusal": None,
            "annotations": [],
        },
        "logprobs": None,
        "finish_reason": "stop",
    }
    # One token per word or punctuation mark, 4 per message and 3 to prime the reply.
    assert body["usage"] == {
        "prompt_tokens": (3 + 4) + (7 + 4) + 3,
        "completion_tokens": 11,
        "total_tokens": 32,
    }


def test_chat_reply_is_deterministic_and_respects_max_tokens(client: httpx.Client) -> None:
    request = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Tell me a story"}]}],
    }
    first = client.post(CHAT, json=request, headers=OPENAI).json()
    assert (
        first["choices"][0]["message"]["content"]
        == client.post(CHAT, json=request, headers=OPENAI).json()["choices"][0]["message"]["content"]
    )
    limited = client.post(CHAT, json={**request, "max_tokens": 3}, headers=OPENAI).json()
    assert limited["choices"][0]["message"]["content"] == "Simulated reply to:"
    assert limited["choices"][0]["finish_reason"] == "length"


def test_chat_stream_with_usage(client: httpx.Client) -> None:
    request = {
        "model": "gpt-4o-mini",
        "messages": MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with client.stream("POST", CHAT, json=request, headers=OPENAI) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw_chunks = list(response.iter_raw())
    assert len(raw_chunks) > 3
    events = sse_events(b"".join(raw_chunks).decode())
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert {chunk["id"] for chunk in chunks} == {chunks[0]["id"]}
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in chunks if chunk["choices"])
    assert text == "Simulated reply to: What is the capital of India?"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 21, "completion_tokens": 11, "total_tokens": 32}
    assert all(chunk["usage"] is None for chunk in chunks[:-1])


def test_chat_stream_without_usage(client: httpx.Client) -> None:
    response = client.post(
        CHAT, json={"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}, headers=OPENAI
    )
    chunks = [json.loads(event) for event in sse_events(response.text)[:-1]]
    assert all("usage" not in chunk for chunk in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": MESSAGES}, "model"),
        ({"model": "gpt-4o-mini"}, "messages"),
        ({"model": "gpt-4o-mini", "messages": []}, "messages"),
        ({"model": "gpt-4o-mini", "messages": [{"role": "robot", "content": "hi"}]}, "messages[0]"),
        ({"model": "gpt-4o-mini", "messages": MESSAGES, "max_tokens": 0}, "max_tokens"),
    ],
)
def test_chat_rejects_bad_requests(client: httpx.Client, body: dict[str, Any], param: str) -> None:
    error = assert_openai_error(
        client.post(CHAT, json=body, headers=OPENAI), 400, "invalid_request_error", None
    )
    assert error["param"] == param


def test_missing_or_wrong_auth_is_401(client: httpx.Client) -> None:
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Token abc"}):
        for response in (
            client.post(CHAT, json={"model": "gpt-4o-mini", "messages": MESSAGES}, headers=headers),
            client.post(EMBEDDINGS, json={"model": "text-embedding-3-small", "input": "x"}, headers=headers),
            client.get(MODELS, headers=headers),
        ):
            assert_openai_error(response, 401, "invalid_request_error", "invalid_api_key")


def embed(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post(EMBEDDINGS, json={"model": "text-embedding-3-small", **body}, headers=OPENAI)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_embeddings_are_deterministic_unit_vectors(client: httpx.Client) -> None:
    body = embed(
        client, input=["monsoon rain in Mumbai", "rain in Mumbai during the monsoon", "stock market prices"]
    )
    assert body["object"] == "list" and body["model"] == "text-embedding-3-small"
    assert body["usage"] == {"prompt_tokens": 13, "total_tokens": 13}
    vectors = [item["embedding"] for item in body["data"]]
    assert [item["index"] for item in body["data"]] == [0, 1, 2]
    assert all(len(vector) == 1536 for vector in vectors)
    assert all(math.isclose(cosine(vector, vector), 1.0) for vector in vectors)
    assert (
        cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2]) + 0.3
    )  # shared words point the same way
    assert embed(client, input="monsoon rain in Mumbai")["data"][0]["embedding"] == vectors[0]


def test_embedding_sizes(client: httpx.Client) -> None:
    assert len(embed(client, model="text-embedding-3-large", input="x")["data"][0]["embedding"]) == 3072
    full = embed(client, input="hello world")["data"][0]["embedding"]
    short = embed(client, input="hello world", dimensions=256)["data"][0]["embedding"]
    assert len(short) == 256
    assert math.isclose(cosine(short, short), 1.0)
    scale = math.sqrt(sum(x * x for x in full[:256]))
    assert short == pytest.approx(
        [x / scale for x in full[:256]]
    )  # shortened like the real API: truncate, renormalise


def test_embeddings_base64_is_little_endian_float32(client: httpx.Client) -> None:
    floats = embed(client, input=[[1, 2, 3], "tokens"])["data"]
    encoded = embed(client, input=[[1, 2, 3], "tokens"], encoding_format="base64")["data"]
    for as_floats, as_base64 in zip(floats, encoded, strict=True):
        raw = base64.b64decode(as_base64["embedding"])
        decoded = list(struct.unpack(f"<{len(raw) // 4}f", raw))
        assert decoded == pytest.approx(as_floats["embedding"], abs=1e-7)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x"}, "model"),
        ({"model": "text-embedding-3-small"}, "input"),
        ({"model": "text-embedding-3-small", "input": ""}, "input"),
        ({"model": "text-embedding-3-small", "input": ["ok", 5]}, "input"),
        ({"model": "text-embedding-3-small", "input": "x", "dimensions": 2000}, "dimensions"),
        ({"model": "text-embedding-3-small", "input": "x", "encoding_format": "int8"}, "encoding_format"),
    ],
)
def test_embeddings_reject_bad_requests(client: httpx.Client, body: dict[str, Any], param: str) -> None:
    error = assert_openai_error(
        client.post(EMBEDDINGS, json=body, headers=OPENAI), 400, "invalid_request_error", None
    )
    assert error["param"] == param


def test_models_list(client: httpx.Client) -> None:
    body = client.get(MODELS, headers=OPENAI).json()
    assert body["object"] == "list"
    ids = [model["id"] for model in body["data"]]
    assert "gpt-4o-mini" in ids and "text-embedding-3-small" in ids
    assert all(model["object"] == "model" and model["owned_by"] for model in body["data"])

"""Chat calls go out with what the provider needs and nothing of an SDK's description of the
gateway's machine (``X-Stainless-OS`` and the like: per-call work for every layer that handles
headers, see bench/README.md, "Overhead")."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar, Request, post

from app.config import load_settings
from app.providers.service_manager import ServiceManager
from app.telemetry import Telemetry
from tests.support import live_server

COMPLETION = {"id": "c1", "object": "chat.completion", "model": "gpt-test",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}


@pytest.fixture
def upstream() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """An OpenAI-shaped upstream that records the headers of each request."""
    seen: list[dict[str, str]] = []

    @post("/v1/chat/completions", status_code=200)
    async def chat(request: Request[Any, Any, Any]) -> dict[str, Any]:
        seen.append({k.lower(): v for k, v in request.headers.items()})
        return COMPLETION

    with live_server(Litestar([chat], openapi_config=None)) as server:
        yield server.url + "/v1", seen


async def test_chat_sends_no_sdk_platform_headers(upstream: tuple[str, list[dict[str, str]]]) -> None:
    base_url, seen = upstream
    settings = load_settings({"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": base_url})
    manager = ServiceManager(settings, telemetry=Telemetry(settings))
    try:
        answer = await manager.services.openai_chat.complete(
            {"model": "gpt-test", "messages": [{"role": "user", "content": "hello"}]})
    finally:
        await manager.stop()
        manager.telemetry.shutdown()

    assert answer.text == "hi"
    [headers] = seen
    assert headers["authorization"] == "Bearer sk-test"
    assert headers["content-type"] == "application/json" and "traceparent" in headers
    assert not [name for name in headers if name.startswith("x-stainless-")]

"""OpenAI chat completions (JSON and SSE) and embeddings, on the provider's pooled ``httpx2``
client like every other provider.

Bodies are relayed as the caller sent them (the gateway speaks OpenAI's wire format) and parsed
only for usage, so the ``openai`` SDK's request layer (typed options copied per call, its own
retries, its error classes) would be work without use, in memory per call in flight and in CPU
per call (bench/README.md, "Memory per call in flight"). Errors are read from the HTTP status like
Sarvam's and Deepgram's.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from ..calls import CallContext, CallSpec, ErrorType, GatewayError, Relay, invalid
from .results import JSONObject, OpenAIAnswer
from .service import ProviderService
from .upstream_errors import check_response


def check_chat_body(body: JSONObject, max_chars: int) -> None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid("messages must be a non-empty list", 422)
    total = 0
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise invalid(f"messages[{index}] must be an object with a role", 422)
        content = message.get("content")
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            total += sum(len(str(part.get("text", ""))) for part in content if isinstance(part, dict))
    if total > max_chars:
        raise invalid(f"messages hold {total} characters; openai accepts at most {max_chars}", 422)
    if "model" in body and not isinstance(body["model"], str):
        raise invalid("model must be a string", 422)


class OpenAIService(ProviderService):
    provider = "openai"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key()}"}

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def model(self, body: JSONObject) -> str:
        return str(body.get("model") or self.pipeline.settings.openai_model)

    async def _probe(self, ctx: CallContext) -> object:
        response = await self.http.get(self.url("/models"), headers=self.headers())
        await check_response(self.provider, response)
        return response.json()


def _usage(ctx: CallContext, data: object) -> None:
    usage = data.get("usage") if isinstance(data, dict) else None
    if isinstance(usage, dict):
        ctx.input_tokens = int(usage.get("prompt_tokens") or 0)
        ctx.output_tokens = int(usage.get("completion_tokens") or 0)
        details = usage.get("prompt_tokens_details")
        ctx.cached_input_tokens = int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
    if isinstance(data, dict) and isinstance(data.get("model"), str):
        ctx.response_model = data["model"]


class OpenAIChat(OpenAIService):
    operation = "chat"

    def spec(self, model: str | None = None) -> CallSpec:
        return CallSpec(self.provider, self.operation, model, gen_ai_operation="chat")

    def validate(self, body: JSONObject) -> None:
        check_chat_body(body, self.cfg.max_text_length)

    async def complete(self, body: JSONObject) -> OpenAIAnswer:
        """A non-streamed chat completion, as the provider's JSON."""
        model = self.model(body)

        async def attempt(ctx: CallContext) -> OpenAIAnswer:
            data = await self.post_json(self.url("/chat/completions"), {**body, "model": model, "stream": False})
            if not isinstance(data.get("choices"), list):
                raise GatewayError(ErrorType.UPSTREAM_MALFORMED, "openai sent no choices")
            _usage(ctx, data)
            return OpenAIAnswer(data)

        return await self.pipeline.call(self.spec(model), attempt, validate=lambda: self.validate(body))

    async def stream(self, body: JSONObject) -> Relay:
        """Server-sent events as the provider sends them. Usage is always asked for upstream (to
        count tokens) and its chunk is passed on only when the caller asked for it too."""
        model = self.model(body)
        caller_wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        upstream = {**body, "model": model, "stream": True,
                    "stream_options": {**(body.get("stream_options") or {}), "include_usage": True}}

        async def open_stream(ctx: CallContext) -> AsyncIterator[bytes]:
            done = False
            async with self.http.stream("POST", self.url("/chat/completions"), headers=self.headers(),
                                        json=upstream) as response:
                await check_response(self.provider, response)
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        done = True
                    else:
                        try:
                            chunk = json.loads(payload)
                        except ValueError:
                            raise GatewayError(ErrorType.UPSTREAM_MALFORMED, "openai sent a broken event") from None
                        _usage(ctx, chunk)
                        if chunk.get("usage") and not chunk.get("choices") and not caller_wants_usage:
                            continue
                    yield f"data: {payload}\n\n".encode()
            if not done:
                raise GatewayError(ErrorType.UPSTREAM_MALFORMED, "openai ended the stream without [DONE]")

        return await self.pipeline.stream(self.spec(model), open_stream, validate=lambda: self.validate(body))


class OpenAIEmbeddings(OpenAIService):
    operation = "embeddings"

    def spec(self, model: str | None = None) -> CallSpec:
        return CallSpec(self.provider, self.operation, model, gen_ai_operation="embeddings")

    def validate(self, body: JSONObject) -> None:
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else inputs if isinstance(inputs, list) else None
        if not texts:
            raise invalid("input must be a string or a non-empty list", 422)
        if not isinstance(body.get("model"), str):
            raise invalid("model must be a string", 422)
        total = sum(len(t) if isinstance(t, str) else len(t) if isinstance(t, list) else 0 for t in texts)
        if total > self.cfg.max_text_length:
            raise invalid(f"input holds {total} characters; openai accepts at most {self.cfg.max_text_length}", 422)

    async def create(self, body: JSONObject) -> OpenAIAnswer:
        async def attempt(ctx: CallContext) -> OpenAIAnswer:
            data = await self.post_json(self.url("/embeddings"), body)
            usage = data.get("usage") or {}
            ctx.input_tokens = int(usage.get("prompt_tokens") or 0) if isinstance(usage, dict) else None
            return OpenAIAnswer(data)

        return await self.pipeline.call(self.spec(str(body.get("model"))), attempt,
                                        validate=lambda: self.validate(body))

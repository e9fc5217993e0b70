"""What every provider service shares: its configuration, the pipeline and the HTTP client."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypedDict

import httpx2

from ..calls import CallContext, CallSpec, ErrorType, GatewayError, Relay, UpstreamAnswer
from ..config import ServiceConfig
from ..resilience.validation import AUDIO_TYPES, check_text_field
from ..simulator import SIM_API_KEY
from .base import Pipeline
from .results import JSONObject
from .upstream_errors import check_response
from .wav import relay_wav

Params = Sequence[tuple[str, str]]
"""Query parameters as the caller sent them (repeated names kept)."""


class CheckReport(TypedDict):
    """An active check as the seed's ``health_check_all()`` answers it."""

    provider: str
    operation: str
    status: str
    latency_ms: float
    checked_at: float
    error_type: str | None


@dataclass(frozen=True)
class HealthResult:
    """One active check of a provider."""

    provider: str
    operation: str
    status: str
    """``up`` or ``down``."""
    latency_ms: float
    checked_at: float
    error_type: str | None = None

    def as_dict(self) -> CheckReport:
        return {"provider": self.provider, "operation": self.operation, "status": self.status,
                "latency_ms": round(self.latency_ms, 3), "checked_at": self.checked_at,
                "error_type": self.error_type}


def sample_rate(value: object, default: int) -> int:
    """The sample rate a caller asked for (a JSON number or a query string), or ``default``."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return default
    try:
        rate = int(float(value))
    except (ValueError, OverflowError):
        return default
    return rate if rate > 0 else default


def upstream_json(provider: str, body: bytes) -> JSONObject:
    """A provider's answer as the JSON object every JSON API of ours answers with."""
    try:
        data = json.loads(body)
    except ValueError:
        raise GatewayError(ErrorType.UPSTREAM_MALFORMED, f"{provider} sent a body that is not JSON") from None
    if not isinstance(data, dict):
        raise GatewayError(ErrorType.UPSTREAM_MALFORMED, f"{provider} sent a body that is not a JSON object")
    return data


@dataclass(frozen=True)
class RelayedStream:
    """A streamed answer relayed for a drop-in route: the provider's headers (known once its first
    bytes arrived) and the rest of its bytes as they arrive."""

    headers: dict[str, str]
    chunks: Relay


class ProviderService:
    """One operation of one provider; every call goes through :attr:`pipeline`."""

    provider: str = ""
    operation: str = ""

    def __init__(self, pipeline: Pipeline, http: Callable[[], httpx2.AsyncClient]) -> None:
        self.pipeline = pipeline
        self._http = http

    @property
    def cfg(self) -> ServiceConfig:
        return self.pipeline.settings.get_service_config(self.provider)

    @property
    def http(self) -> httpx2.AsyncClient:
        return self._http()

    @property
    def base_url(self) -> str:
        if self.cfg.base_url is None:
            raise GatewayError(ErrorType.CONNECTION, f"{self.provider} has no base URL configured")
        return self.cfg.base_url

    def spec(self, model: str | None = None) -> CallSpec:
        return CallSpec(self.provider, self.operation, model)

    def api_key(self) -> str:
        key = self.cfg.api_key
        return key.get_secret_value() if key is not None else SIM_API_KEY

    def headers(self) -> dict[str, str]:
        """The provider's credential headers (the provider key, or the simulator's)."""
        raise NotImplementedError

    async def post_json(self, url: str, body: JSONObject) -> JSONObject:
        """One attempt of a JSON call: ``body`` to ``url`` with the provider's credentials; its
        answer once it is known to be a JSON object."""
        response = await self.http.post(url, json=body, headers=self.headers())
        await check_response(self.provider, response)
        return upstream_json(self.provider, response.content)

    async def forward(
        self, path: str, required: str, *, content: bytes | AsyncIterator[bytes], headers: Mapping[str, str],
        params: Params = (),
    ) -> tuple[UpstreamAnswer, JSONObject]:
        """One attempt of a drop-in call: the caller's body and query as they were sent, with the
        provider's credentials instead of the caller's; the answer as the provider sent it (and
        parsed), once it is known to be a JSON object with ``required`` in it."""
        response = await self.http.post(self.base_url + path, content=content, params=list(params),
                                        headers={**headers, **self.headers()})
        await check_response(self.provider, response)
        data = upstream_json(self.provider, response.content)
        if required not in data:
            raise GatewayError(ErrorType.UPSTREAM_MALFORMED, f"{self.provider} sent no {required}")
        return UpstreamAnswer.of(response.status_code, response.content, response.headers), data

    async def forward_audio(
        self, path: str, body: JSONObject, sample_rate: int, *, content: bytes, headers: Mapping[str, str],
        params: Params = (), model: str | None = None,
    ) -> RelayedStream:
        """A drop-in text-to-speech call of ``body["text"]``, streamed back as the provider streams it
        (returns once its first bytes arrived). WAV is checked and its seconds counted as on
        ``/v1``; other codecs, which the caller may ask for, are relayed as they come."""
        answer: dict[str, str] = {}

        async def open_stream(ctx: CallContext) -> AsyncIterator[bytes]:
            ctx.characters = len(body["text"])
            async with self.http.stream("POST", self.base_url + path, content=content, params=list(params),
                                        headers={**headers, **self.headers()}) as response:
                await check_response(self.provider, response)
                answer.update(UpstreamAnswer.of(response.status_code, b"", response.headers).headers)
                media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
                chunks = (relay_wav(self.provider, response, sample_rate, ctx) if AUDIO_TYPES.get(media_type) == "wav"
                          else response.aiter_bytes())
                async for chunk in chunks:
                    yield chunk

        chunks = await self.pipeline.stream(self.spec(model), open_stream,
                                            validate=lambda: check_text_field(body, "text", self.cfg))
        return RelayedStream(answer, chunks)

    async def health_check(self) -> HealthResult:
        """A cheap call through the pipeline that spends no client rate-limit budget."""
        started = time.perf_counter()
        try:
            await self.pipeline.call(CallSpec(self.provider, "health"), self._probe, health_check=True)
        except GatewayError as error:
            return HealthResult(self.provider, "health", "down", (time.perf_counter() - started) * 1000,
                                time.time(), error.error_type.value)
        return HealthResult(self.provider, "health", "up", (time.perf_counter() - started) * 1000,
                            time.time())

    async def _probe(self, ctx: CallContext) -> object:
        """The provider's cheapest authenticated call."""
        raise NotImplementedError

"""The service manager: every provider service, the pipeline they share, fallbacks, health checks.

The seed's API is kept: ``service_manager.get_service('sarvam', 'tts')``,
``await service_manager.health_check_all()``, ``service_manager.get_metrics_summary()``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx2
from opentelemetry import trace

from ..background import cancel
from ..calls import ErrorType, GatewayError, invalid
from ..config import Settings, get_settings
from ..logs.observer import CallLog, serving_fallback
from ..logs.storm import StormControl
from ..monitoring import Monitoring
from ..monitoring import set_current as set_current_monitoring
from ..monitoring.loop_lag import LoopLagProbe
from ..resilience.ratelimit import RateLimiter
from ..resilience.shared_state import MEMORY_HEALTH, StateHealth
from ..resilience.validation import (
    DEEPGRAM_STT_LANGUAGES,
    DEEPGRAM_TTS_LANGUAGES,
    SARVAM_LANGUAGES,
    Audio,
    check_audio,
)
from ..spool import SpooledFile
from ..telemetry import Telemetry
from .base import Pipeline
from .deepgram import DeepgramSTT, DeepgramTTS
from .http_client import HEALTH_CHECK_HEADROOM, make_http_client
from .openai_chat import OpenAIChat, OpenAIEmbeddings
from .rag import DocumentStore, RAGIngest, RAGQuery
from .sarvam import SarvamSTT, SarvamTranslate, SarvamTTS
from .service import HealthResult, ProviderService

log = logging.getLogger("app.providers")
T = TypeVar("T")

# The seed's operation names, and a few obvious spellings, as aliases.
ALIASES = {
    "translation": "translate", "text_to_speech": "tts", "text-to-speech": "tts", "speech_to_text": "stt",
    "speech-to-text": "stt", "transcription": "stt", "chat_completion": "chat", "completions": "chat",
    "embedding": "embeddings", "retrieval": "query", "search": "query",
}


@dataclass(frozen=True)
class Served:
    """A result and who served it."""

    value: Any
    provider: str
    fallback: bool = False


class ServiceManager:
    def __init__(self, settings: Settings | None = None, *, telemetry: Telemetry | None = None) -> None:
        self.settings = settings or get_settings()
        self.telemetry = telemetry or Telemetry(self.settings)
        self.monitoring = Monitoring(self.settings)
        self.storm = StormControl(self.settings.log_summary_interval)
        call_log = CallLog(self.storm)
        self.pipeline = Pipeline(
            self.settings, limiter=self._limiter(),
            observers=[self.telemetry.observer, self.monitoring.observer, call_log], tracer=self.telemetry.tracer,
            hold_listeners=[call_log.on_hold],
        )
        if self.pipeline.shared is not None:
            self.pipeline.shared.listeners.append(call_log.on_state_backend)
            shared = self.pipeline.shared
            self.monitoring.join_fleet(shared.redis, shared.health, shared.prefix)
        # gateway_state_backend_up and GatewayStateBackendDown read the store's health when they need it.
        self.telemetry.observe_state_backend(self.state_backend)
        self.monitoring.observe_state_backend(self.state_backend)
        bulkheads = self.pipeline.bulkheads.values()
        self.telemetry.observe_bulkheads(bulkheads)
        self.monitoring.observe_saturation(lambda: {b.provider: (b.in_flight, b.limit) for b in bulkheads})
        self.loop_lag = LoopLagProbe([self.telemetry.record_loop_lag, self.monitoring.recorder.record_loop_lag])
        self._http: dict[str, httpx2.AsyncClient] = {}
        self.store = DocumentStore(self.settings.rag_db_path)
        sarvam, deepgram, openai = (functools.partial(self.http, p) for p in ("sarvam", "deepgram", "openai"))
        chat = OpenAIChat(self.pipeline, openai)
        services: list[ProviderService] = [
            SarvamTranslate(self.pipeline, sarvam), SarvamTTS(self.pipeline, sarvam), SarvamSTT(self.pipeline, sarvam),
            DeepgramSTT(self.pipeline, deepgram), DeepgramTTS(self.pipeline, deepgram),
            chat, OpenAIEmbeddings(self.pipeline, openai),
            RAGIngest(self.pipeline, openai, store=self.store, chat=chat),
            RAGQuery(self.pipeline, openai, store=self.store, chat=chat),
        ]
        self.services = {(s.provider, s.operation): s for s in services}
        self.last_health_checks: dict[str, HealthResult] = {}
        self._health_task: asyncio.Task[None] | None = None

    def _limiter(self) -> RateLimiter:
        return RateLimiter()

    # -- the seed's API ------------------------------------------------------------------------

    def get_service(self, provider: str, operation: str) -> Any:
        """The service for a provider and operation (the seed's names accepted as aliases)."""
        op = ALIASES.get(operation.lower(), operation.lower())
        try:
            return self.services[(provider.lower(), op)]
        except KeyError:
            known = ", ".join(f"{p}.{o}" for p, o in self.services)
            raise KeyError(f"no service {provider}.{operation}; known: {known}") from None

    @property
    def operations(self) -> list[tuple[str, str]]:
        return list(self.services)

    @property
    def providers(self) -> list[str]:
        return list(dict.fromkeys(p for p, _ in self.services))

    async def health_check_all(self) -> dict[str, dict[str, Any]]:
        """Actively check every provider once (cheap calls, no client rate-limit budget)."""
        probes = {p: next(s for (q, _), s in self.services.items() if q == p) for p in self.providers}
        results = await asyncio.gather(*(svc.health_check() for svc in probes.values()))
        for provider, result in zip(probes, results, strict=True):
            self.last_health_checks[provider] = result
        return {p: r.as_dict() for p, r in self.last_health_checks.items()}

    def state_backend(self) -> StateHealth:
        """Where rate limits and breakers live (memory or Redis) and whether that store answers."""
        shared = self.pipeline.shared
        return shared.health() if shared is not None else MEMORY_HEALTH

    def state_health(self) -> dict[str, Any]:
        """:meth:`state_backend` as ``/health/`` shows it."""
        return self.state_backend().as_dict()

    def get_metrics_summary(self) -> dict[str, Any]:
        """Per provider: breaker states, mode and the recorder's numbers over the alert window."""
        summary: dict[str, Any] = {}
        for provider in self.providers:
            cfg = self.settings.get_service_config(provider)
            summary[provider] = {
                "mode": cfg.mode,
                "breakers": {key.split(".", 1)[1]: b.state for key, b in self.pipeline.breakers.items()
                             if key.startswith(provider + ".")},
                "last_health_check": (self.last_health_checks[provider].as_dict()
                                      if provider in self.last_health_checks else None),
            }
        summary["monitoring"] = self.monitoring.get_health_status()
        return summary

    # -- lifecycle -----------------------------------------------------------------------------

    def http(self, provider: str) -> httpx2.AsyncClient:
        """The provider's own connection pool, sized from its ``P_MAX_CONCURRENCY`` (so a hanging
        provider can never hold another's connections), with room for its health checks."""
        client = self._http.get(provider)
        if client is None:
            limit = self.settings.get_service_config(provider).max_concurrency
            client = self._http[provider] = make_http_client(self.telemetry, limit + HEALTH_CHECK_HEADROOM)
        return client

    async def start(self) -> None:
        await self.storm.start()
        await self.monitoring.start()
        self.loop_lag.start()
        self._health_task = asyncio.create_task(self._health_loop(), name="health-checks")

    async def stop(self) -> None:
        await cancel(self._health_task)
        await self.monitoring.stop()
        await self.loop_lag.stop()
        clients, self._http = list(self._http.values()), {}
        for client in clients:
            await client.aclose()
        await self.storm.stop()  # the last summaries, before the log export shuts down
        self.telemetry.shutdown()

    async def _health_loop(self) -> None:
        # The server binds its socket after start-up: a mounted simulator answers a moment later.
        await asyncio.sleep(min(0.25, self.settings.health_check_interval))
        while True:
            try:
                await self.health_check_all()
            except Exception:  # a failing check must never stop the loop
                log.exception("active health checks failed")
            await asyncio.sleep(self.settings.health_check_interval)

    # -- calls with fallbacks ------------------------------------------------------------------

    async def _with_fallback(
        self, candidates: list[str], named: bool, call: Callable[[str], Awaitable[T]],
    ) -> Served:
        """Try each candidate provider in turn; only the first when the caller named one, and
        never past invalid input or a provider's complaint about the request itself."""
        last: GatewayError | None = None
        for index, provider in enumerate(candidates[:1] if named or not self.settings.fallbacks_enabled
                                         else candidates):
            if last is not None:
                trace.get_current_span().add_event("fallback", {
                    "fallback.from": candidates[index - 1], "fallback.to": provider,
                    "fallback.reason": last.error_type.value})
            token = serving_fallback.set(True) if index else None  # for the failed-call log
            try:
                return Served(await call(provider), provider, fallback=index > 0)
            except GatewayError as error:
                if error.error_type in (ErrorType.INVALID_INPUT, ErrorType.UPSTREAM_4XX):
                    raise
                last = error
            finally:
                if token is not None:
                    serving_fallback.reset(token)
        assert last is not None
        raise last

    @staticmethod
    def _candidates(requested: str | None, order: list[str], allowed: set[str]) -> list[str]:
        if requested is not None:
            if requested not in allowed:
                raise invalid(f"provider {requested!r} does not offer this; use one of {', '.join(sorted(allowed))}",
                              422)
            return [requested]
        return order

    async def translate(self, text: str, source: str, target: str) -> Served:
        """Sarvam, then OpenAI chat asked to translate."""

        async def call(provider: str) -> dict[str, str]:
            if provider == "sarvam":
                result: dict[str, str] = await self.get_service("sarvam", "translate").translate(text, source, target)
                return result
            self.get_service("sarvam", "translate").validate(text, source, target)
            completion = await self.get_service("openai", "chat").complete({"messages": [
                {"role": "system", "content": f"Translate the user's text from {source} to {target}. "
                                              "Reply with the translation only."},
                {"role": "user", "content": text}]})
            return {"translated_text": str(completion["choices"][0]["message"].get("content") or ""),
                    "source_language_code": source}

        return await self._with_fallback(["sarvam", "openai"], False, call)

    def _speech_order(self, language: str, deepgram_languages: frozenset[str]) -> list[str]:
        order = ["sarvam", "deepgram"] if language.endswith("-IN") else ["deepgram", "sarvam"]
        supported = {"sarvam": SARVAM_LANGUAGES, "deepgram": deepgram_languages}
        usable = [p for p in order if language in supported[p]]
        if not usable:
            raise invalid(f"language_code {language!r} is not supported; use one of "
                          f"{', '.join(sorted(SARVAM_LANGUAGES | deepgram_languages))}", 422)
        return usable

    async def tts(self, text: str, language: str, speaker: str | None, provider: str | None) -> Served:
        """Streamed audio; falls back to the other speech provider until the first byte."""
        candidates = self._candidates(provider, self._speech_order(language, DEEPGRAM_TTS_LANGUAGES)
                                      if provider is None else [], {"sarvam", "deepgram"})

        async def call(name: str) -> AsyncIterator[bytes]:
            stream: AsyncIterator[bytes] = await self.get_service(name, "tts").stream(text, language, speaker)
            return stream

        return await self._with_fallback(candidates, provider is not None, call)

    def check_audio(self, source: SpooledFile, content_type: str | None, provider: str | None) -> Audio:
        """Audio checked against the strictest limits of the providers that may serve it (reads
        the spooled file's header: call it from a worker thread)."""
        names = [provider] if provider in ("sarvam", "deepgram") else ["sarvam", "deepgram"]
        cfgs = sorted((self.settings.get_service_config(n) for n in names),
                      key=lambda c: (c.max_audio_size_mb, c.max_audio_duration_sec))
        return check_audio(source, content_type, cfgs[0])

    async def stt(self, audio: Audio, language: str, provider: str | None, filename: str) -> Served:
        candidates = self._candidates(provider, self._speech_order(language, DEEPGRAM_STT_LANGUAGES)
                                      if provider is None else [], {"sarvam", "deepgram"})

        async def call(name: str) -> dict[str, Any]:
            result: dict[str, Any] = await self.get_service(name, "stt").transcribe(audio, language, filename)
            return result

        return await self._with_fallback(candidates, provider is not None, call)


_current: ServiceManager | None = None


def set_current(manager: ServiceManager) -> None:
    """Make ``manager`` the one the seed-style module object resolves to."""
    global _current
    _current = manager
    set_current_monitoring(manager.monitoring)


def current() -> ServiceManager:
    if _current is None:
        set_current(ServiceManager())
    assert _current is not None
    return _current


class _CurrentManager:
    """``service_manager``: the running app's manager (or one built from the environment)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(current(), name)


service_manager: Any = _CurrentManager()

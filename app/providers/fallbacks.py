"""Calls that may be served by more than one provider: translate, TTS and STT, with fallbacks.

A caller who names a provider gets that one only; invalid input and a provider's complaint about
the request itself are never retried on another provider.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from opentelemetry import trace

from ..calls import ErrorType, GatewayError, Relay, invalid
from ..config import Settings
from ..logs.observer import serving_fallback
from ..resilience.validation import (
    DEEPGRAM_STT_LANGUAGES,
    DEEPGRAM_TTS_LANGUAGES,
    SARVAM_LANGUAGES,
    Audio,
    check_audio,
)
from ..spool import SpooledFile
from .catalog import Services
from .results import Served, Transcript, Translation

T = TypeVar("T")
SPEECH = frozenset({"sarvam", "deepgram"})


class Fallbacks:
    def __init__(self, settings: Settings, services: Services) -> None:
        self.settings = settings
        self.services = services

    async def _with_fallback(self, candidates: list[str], named: bool, call: Callable[[str], Awaitable[T]]
                             ) -> Served[T]:
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
                if error.error_type in (ErrorType.INVALID_INPUT, ErrorType.UPSTREAM_4XX, ErrorType.BUDGET_EXCEEDED):
                    raise
                last = error
            finally:
                if token is not None:
                    serving_fallback.reset(token)
        assert last is not None
        raise last

    @staticmethod
    def _candidates(requested: str | None, order: list[str], allowed: frozenset[str]) -> list[str]:
        if requested is not None:
            if requested not in allowed:
                offered = ", ".join(sorted(allowed))
                raise invalid(f"provider {requested!r} does not offer this; use one of {offered}", 422)
            return [requested]
        return order

    async def translate(self, text: str, source: str, target: str) -> Served[Translation]:
        """Sarvam, then OpenAI chat asked to translate."""
        sarvam = self.services.sarvam_translate

        async def call(provider: str) -> Translation:
            if provider == "sarvam":
                return await sarvam.translate(text, source, target)
            sarvam.validate(text, source, target)
            completion = await self.services.openai_chat.complete({"messages": [
                {"role": "system", "content": f"Translate the user's text from {source} to {target}. "
                                              "Reply with the translation only."},
                {"role": "user", "content": text}]})
            return Translation(completion.text or "", source)

        return await self._with_fallback(["sarvam", "openai"], False, call)

    def _speech_order(self, language: str, deepgram_languages: frozenset[str]) -> list[str]:
        """The speech providers to try for ``language``, by ``FALLBACKS_SPEECH_ORDER``; only
        those that speak it."""
        if self.settings.speech_order != "auto":
            order = self.settings.speech_order.split(",")
        else:
            order = ["sarvam", "deepgram"] if language.endswith("-IN") else ["deepgram", "sarvam"]
        supported = {"sarvam": SARVAM_LANGUAGES, "deepgram": deepgram_languages}
        usable = [p for p in order if language in supported[p]]
        if not usable:
            raise invalid(f"language_code {language!r} is not supported; use one of "
                          f"{', '.join(sorted(SARVAM_LANGUAGES | deepgram_languages))}", 422)
        return usable

    async def tts(self, text: str, language: str, speaker: str | None, provider: str | None
                  ) -> Served[Relay]:
        """Streamed audio; falls back to the other speech provider until the first byte."""
        candidates = self._candidates(provider, self._speech_order(language, DEEPGRAM_TTS_LANGUAGES)
                                      if provider is None else [], SPEECH)

        async def call(name: str) -> Relay:
            return await self.services.speech(name)[0].stream(text, language, speaker)

        return await self._with_fallback(candidates, provider is not None, call)

    async def stt_stream(self, language: str, provider: str | None, open_session: Callable[[str], Awaitable[T]],
                         ) -> Served[T]:
        """A live transcription session, opened on the first provider that admits it, by the rules of
        :meth:`stt` (so a session starts on the other provider while one's breaker is open)."""
        candidates = self._candidates(provider, self._speech_order(language, DEEPGRAM_STT_LANGUAGES)
                                      if provider is None else [], SPEECH)
        return await self._with_fallback(candidates, provider is not None, open_session)

    def check_audio(self, source: SpooledFile, content_type: str | None, provider: str | None) -> Audio:
        """Audio checked against the strictest limits of the providers that may serve it (reads
        the spooled file's header: call it from a worker thread)."""
        names = [provider] if provider is not None and provider in SPEECH else ["sarvam", "deepgram"]
        cfgs = sorted((self.settings.get_service_config(n) for n in names),
                      key=lambda c: (c.max_audio_size_mb, c.max_audio_duration_sec))
        return check_audio(source, content_type, cfgs[0])

    async def stt(self, audio: Audio, language: str, provider: str | None, filename: str,
                  ) -> Served[Transcript]:
        candidates = self._candidates(provider, self._speech_order(language, DEEPGRAM_STT_LANGUAGES)
                                      if provider is None else [], SPEECH)

        async def call(name: str) -> Transcript:
            return await self.services.speech(name)[1].transcribe(audio, language, filename)

        return await self._with_fallback(candidates, provider is not None, call)

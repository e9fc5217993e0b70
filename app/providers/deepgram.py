"""Deepgram: prerecorded speech-to-text (``/v1/listen``) and streamed text-to-speech (``/v1/speak``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from ..calls import CallContext, ErrorType, GatewayError, Relay, UpstreamAnswer
from ..resilience.validation import (
    DEEPGRAM_STT_LANGUAGES,
    DEEPGRAM_TTS_LANGUAGES,
    Audio,
    check_language,
    check_text,
)
from .results import JSONObject, Transcript
from .service import Params, ProviderService, RelayedStream, sample_rate
from .upstream_errors import check_response
from .wav import relay_wav

STT_MODEL = "nova-3"
TTS_MODEL = "aura-2-thalia-en"
SPEAK_DEFAULT_MODEL = "aura-asteria-en"
"""The voice Deepgram speaks with when a ``/v1/speak`` request names none (how such calls are priced)."""
TTS_SAMPLE_RATE = 24000


class DeepgramService(ProviderService):
    provider = "deepgram"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.api_key()}"}

    async def _probe(self, ctx: CallContext) -> object:
        response = await self.http.get(self.base_url + "/v1/projects", headers=self.headers())
        await check_response(self.provider, response)
        return response.json()


class DeepgramSTT(DeepgramService):
    operation = "stt"

    def validate(self, language: str) -> None:
        check_language(language, DEEPGRAM_STT_LANGUAGES)

    async def transcribe(self, audio: Audio, language: str, filename: str = "audio") -> Transcript:
        """The audio as the raw request body, streamed from the spooled upload on every attempt."""

        async def attempt(ctx: CallContext) -> Transcript:
            ctx.audio_seconds = audio.duration_sec
            response = await self.http.post(
                self.base_url + "/v1/listen", content=audio.source.chunks(),
                params={"model": STT_MODEL, "language": language, "smart_format": "true"},
                headers={**self.headers(), "Content-Type": audio.content_type, "Content-Length": str(audio.size)},
            )
            await check_response(self.provider, response)
            try:
                transcript = response.json()["results"]["channels"][0]["alternatives"][0]["transcript"]
            except (KeyError, IndexError, TypeError, ValueError):
                raise GatewayError(ErrorType.UPSTREAM_MALFORMED, "deepgram sent no transcript") from None
            return Transcript(str(transcript), language)

        return await self.pipeline.call(self.spec(STT_MODEL), attempt, validate=lambda: self.validate(language))

    async def relay(self, audio: Audio, params: Params, content_type: str) -> UpstreamAnswer:
        """A drop-in call: the caller's query as sent (languages and models are Deepgram's to judge),
        the checked audio streamed from the spool as the raw body."""

        async def attempt(ctx: CallContext) -> UpstreamAnswer:
            ctx.audio_seconds = audio.duration_sec
            answer, _ = await self.forward(
                "/v1/listen", "results", content=audio.source.chunks(), params=params,
                headers={"Content-Type": content_type, "Content-Length": str(audio.size)})
            return answer

        return await self.pipeline.call(self.spec(dict(params).get("model") or STT_MODEL), attempt)


class DeepgramTTS(DeepgramService):
    operation = "tts"

    def validate(self, text: str, language: str) -> None:
        check_text(text, self.cfg)
        check_language(language, DEEPGRAM_TTS_LANGUAGES)

    async def stream(self, text: str, language: str, speaker: str | None = None) -> Relay:
        """WAV (linear16) bytes as Deepgram streams them; returns once the first bytes arrived."""
        params = {"model": speaker if speaker and speaker.startswith("aura") else TTS_MODEL,
                  "encoding": "linear16", "container": "wav", "sample_rate": str(TTS_SAMPLE_RATE)}

        async def open_stream(ctx: CallContext) -> AsyncIterator[bytes]:
            ctx.characters = len(text)
            async with self.http.stream("POST", self.base_url + "/v1/speak", params=params, json={"text": text},
                                        headers=self.headers()) as response:
                async for chunk in relay_wav(self.provider, response, TTS_SAMPLE_RATE, ctx):
                    yield chunk

        return await self.pipeline.stream(self.spec(params["model"]), open_stream,
                                          validate=lambda: self.validate(text, language))

    async def relay_stream(self, raw: bytes, body: JSONObject, params: Params) -> RelayedStream:
        """A drop-in ``/v1/speak`` call, relayed as Deepgram streams it."""
        rate = sample_rate(dict(params).get("sample_rate"), TTS_SAMPLE_RATE)
        return await self.forward_audio("/v1/speak", body, rate, content=raw, params=params,
                                        headers={"Content-Type": "application/json"},
                                        model=dict(params).get("model") or SPEAK_DEFAULT_MODEL)

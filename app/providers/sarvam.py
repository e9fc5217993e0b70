"""Sarvam: translate, streamed text-to-speech and speech-to-text."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from ..calls import CallContext, ErrorType, GatewayError, Relay, UpstreamAnswer
from ..resilience.validation import SARVAM_LANGUAGES, Audio, check_language, check_text, check_text_field
from .multipart import multipart_body
from .results import JSONObject, Transcript, Translation
from .service import ProviderService, RelayedStream, sample_rate
from .upstream_errors import check_response
from .wav import relay_wav, wav_seconds

TTS_MODEL = "bulbul:v2"
STT_MODEL = "saarika:v2.5"
TTS_SAMPLE_RATE = 22050
JSON = {"Content-Type": "application/json"}


class SarvamService(ProviderService):
    provider = "sarvam"

    def headers(self) -> dict[str, str]:
        return {"api-subscription-key": self.api_key()}

    async def _probe(self, ctx: CallContext) -> object:
        return await self.post_json(self.base_url + "/translate", {
            "input": "ok", "source_language_code": "en-IN", "target_language_code": "hi-IN"})


class SarvamTranslate(SarvamService):
    operation = "translate"

    def validate(self, text: str, source: str, target: str) -> None:
        check_text(text, self.cfg, "input")
        if source != "auto":
            check_language(source, SARVAM_LANGUAGES, "source_language_code")
        check_language(target, SARVAM_LANGUAGES, "target_language_code")

    async def translate(self, text: str, source: str, target: str) -> Translation:
        async def attempt(ctx: CallContext) -> Translation:
            ctx.characters = len(text)
            data = await self.post_json(self.base_url + "/translate", {
                "input": text, "source_language_code": source, "target_language_code": target})
            translated = data.get("translated_text")
            if not isinstance(translated, str):
                raise GatewayError(ErrorType.UPSTREAM_MALFORMED, "sarvam sent no translated_text")
            return Translation(translated, str(data.get("source_language_code") or source))

        return await self.pipeline.call(self.spec(), attempt, validate=lambda: self.validate(text, source, target))

    async def relay(self, raw: bytes, body: JSONObject) -> UpstreamAnswer:
        """A drop-in call: the caller's own request (languages are Sarvam's to judge)."""

        async def attempt(ctx: CallContext) -> UpstreamAnswer:
            ctx.characters = len(body["input"])
            answer, _ = await self.forward("/translate", "translated_text", content=raw, headers=JSON)
            return answer

        return await self.pipeline.call(self.spec(), attempt,
                                        validate=lambda: check_text_field(body, "input", self.cfg))


class SarvamTTS(SarvamService):
    operation = "tts"

    def validate(self, text: str, language: str) -> None:
        check_text(text, self.cfg)
        check_language(language, SARVAM_LANGUAGES)

    async def stream(self, text: str, language: str, speaker: str | None = None) -> Relay:
        """WAV bytes as Sarvam streams them; returns once the first bytes have arrived."""
        body: JSONObject = {"text": text, "target_language_code": language, "language_code": language,
                                "model": TTS_MODEL, "speech_sample_rate": TTS_SAMPLE_RATE}
        if speaker:
            body["speaker"] = speaker

        async def open_stream(ctx: CallContext) -> AsyncIterator[bytes]:
            ctx.characters = len(text)
            async with self.http.stream("POST", self.base_url + "/text-to-speech/stream", json=body,
                                        headers=self.headers()) as response:
                async for chunk in relay_wav(self.provider, response, TTS_SAMPLE_RATE, ctx):
                    yield chunk

        return await self.pipeline.stream(self.spec(), open_stream, validate=lambda: self.validate(text, language))

    async def relay_speech(self, raw: bytes, body: JSONObject) -> UpstreamAnswer:
        """A drop-in ``/text-to-speech`` call: base64 WAVs in one JSON answer."""
        rate = sample_rate(body.get("speech_sample_rate"), TTS_SAMPLE_RATE)

        async def attempt(ctx: CallContext) -> UpstreamAnswer:
            ctx.characters = len(body["text"])
            answer, data = await self.forward("/text-to-speech", "audios", content=raw, headers=JSON)
            audios = data["audios"]
            if isinstance(audios, list):  # WAVs ("RIFF" is "UklGR" in base64) are counted, as on /v1
                ctx.audio_seconds = sum(wav_seconds(_decoded_size(a), rate) for a in audios
                                        if isinstance(a, str) and a.startswith("UklGR"))
            return answer

        return await self.pipeline.call(self.spec(), attempt, validate=lambda: check_text_field(body, "text", self.cfg))

    async def relay_stream(self, raw: bytes, body: JSONObject) -> RelayedStream:
        """A drop-in ``/text-to-speech/stream`` call, relayed as Sarvam streams it."""
        return await self.forward_audio(
            "/text-to-speech/stream", body, sample_rate(body.get("speech_sample_rate"), TTS_SAMPLE_RATE),
            content=raw, headers=JSON)


def _decoded_size(encoded: str) -> int:
    """Bytes in a base64 string once decoded (without decoding it)."""
    return len(encoded) * 3 // 4 - encoded[-2:].count("=")


class SarvamSTT(SarvamService):
    operation = "stt"

    def validate(self, language: str) -> None:
        check_language(language, SARVAM_LANGUAGES)

    async def transcribe(self, audio: Audio, language: str, filename: str = "audio") -> Transcript:
        """The transcript of audio that passed validation, sent as a multipart body streamed from
        the spooled upload (read again on every attempt)."""

        async def attempt(ctx: CallContext) -> Transcript:
            ctx.audio_seconds = audio.duration_sec
            form, body = multipart_body({"model": STT_MODEL, "language_code": language}, "file", filename,
                                        audio.content_type, audio.source)
            response = await self.http.post(self.base_url + "/speech-to-text", headers={**self.headers(), **form},
                                            content=body)
            await check_response(self.provider, response)
            data = response.json()
            transcript = data.get("transcript") if isinstance(data, dict) else None
            if not isinstance(transcript, str):
                raise GatewayError(ErrorType.UPSTREAM_MALFORMED, "sarvam sent no transcript")
            return Transcript(transcript, str(data.get("language_code") or language))

        return await self.pipeline.call(self.spec(), attempt, validate=lambda: self.validate(language))

    async def relay(self, audio: Audio, fields: Mapping[str, str], filename: str) -> UpstreamAnswer:
        """A drop-in call: the caller's form fields as sent, the checked audio streamed from the spool."""

        async def attempt(ctx: CallContext) -> UpstreamAnswer:
            ctx.audio_seconds = audio.duration_sec
            form, body = multipart_body(fields, "file", filename, audio.content_type, audio.source)
            answer, _ = await self.forward("/speech-to-text", "transcript", content=body, headers=form)
            return answer

        return await self.pipeline.call(self.spec(), attempt)

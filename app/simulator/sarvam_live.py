"""Sarvam's streaming WebSockets: ``/speech-to-text/ws`` (base64 audio messages in, a ``data``
transcript per second of audio, ``flush`` honoured) and ``/text-to-speech/ws`` (``config`` first,
then ``text``, ``flush`` for its audio, ``ping``)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from typing import Any

from litestar import WebSocket, websocket
from litestar.di import NamedDependency

from app.simulator.audio import synth_wav
from app.simulator.live import LiveFaults, LiveSession, Transcriber, pcm_seconds, serve_socket, wav_rate
from app.simulator.sarvam import DEFAULT_SAMPLE_RATE, SARVAM, speech_seconds
from app.simulator.state import SimulatorState
from app.wire import closes
from app.wire import sarvam as wire
from app.wire.frames import json_message

AnySocket = WebSocket[Any, Any, Any]
RESULT_SECONDS = 1.0


class _Transcription(LiveSession):
    def __init__(self, socket: AnySocket, faults: LiveFaults) -> None:
        query = socket.query_params
        self.socket, self.faults = socket, faults
        self.language = query.get("language-code") or "unknown"
        self.rate = int(query.get("sample_rate") or 16000)
        self.transcriber = Transcriber(self.language)
        self.pending = 0.0
        self.results = 0
        self.started = time.perf_counter()

    def audio(self, audio: dict[str, Any]) -> None:
        pcm = base64.b64decode(str(audio.get("data", "")), validate=True)
        rate = wav_rate(pcm)
        if rate is not None:
            pcm = pcm[44:]
        self.pending += pcm_seconds(len(pcm), rate or int(audio.get("sample_rate") or self.rate))

    async def frame(self, frame: bytes | str) -> bool:
        data = json_message(frame)
        if isinstance(data.get("audio"), dict):
            try:
                self.audio(data["audio"])
            except (binascii.Error, ValueError):
                await self.socket.send_json(wire.stt_error("audio data is not base64", "invalid_request_error"))
                await self.socket.close(closes.POLICY, "audio data is not base64")
                return False
            return self.pending < RESULT_SECONDS or await self.result()
        if data.get("type") == "flush":
            return await self.result()
        return True

    async def result(self) -> bool:
        if self.pending <= 0:
            return True
        if self.results == 0 and self.faults.first_result_delay:
            await asyncio.sleep(self.faults.first_result_delay)
        seconds, self.pending = self.pending, 0.0
        text = self.transcriber.transcribe(seconds)
        await self.socket.send_json(wire.stt_data(text, request_id=wire.new_request_id(), language=self.language,
                                                  audio_seconds=seconds, latency=0.01))
        self.results += 1
        return not (self.faults.drop_after_first and self.results == 1)


class _Synthesis(LiveSession):
    """One streamed synthesis: its ``config``, the text since the last flush, and the flushes so far."""

    def __init__(self, socket: AnySocket, faults: LiveFaults) -> None:
        self.socket, self.faults = socket, faults
        self.completion = socket.query_params.get("send_completion_event", "").lower() == "true"
        self.configured: dict[str, Any] | None = None
        self.text: list[str] = []
        self.flushes = 0

    async def frame(self, frame: bytes | str) -> bool:
        data = json_message(frame)
        kind = data.get("type")
        body: dict[str, Any] = data["data"] if isinstance(data.get("data"), dict) else {}
        if kind == "config":
            self.configured = body
        elif kind == "ping":
            return True
        elif self.configured is None:
            await self.socket.send_json(wire.tts_error("Send a config message first.", 400))
        elif kind == "text":
            self.text.append(str(body.get("text", "")))
        elif kind == "flush" and self.text:
            return await self.flush(self.configured)
        return True

    async def flush(self, configured: dict[str, Any]) -> bool:
        """The audio of the text so far; ``False`` when a fault drops the socket after it."""
        if self.flushes == 0 and self.faults.first_result_delay:
            await asyncio.sleep(self.faults.first_result_delay)
        rate = int(configured.get("speech_sample_rate") or DEFAULT_SAMPLE_RATE)
        wav = synth_wav(speech_seconds("".join(self.text)), rate)
        self.text.clear()
        await self.socket.send_json(wire.tts_audio(base64.b64encode(wav).decode(), request_id=wire.new_request_id()))
        if self.faults.drop_after_first:
            return False
        if self.completion:
            await self.socket.send_json(wire.tts_final())
        self.flushes += 1
        return True


@websocket("/speech-to-text/ws")
async def speech_to_text(socket: AnySocket, sim_state: NamedDependency[SimulatorState]) -> None:
    await serve_socket(socket, sim_state, SARVAM, "stt", _Transcription)


@websocket("/text-to-speech/ws")
async def text_to_speech(socket: AnySocket, sim_state: NamedDependency[SimulatorState]) -> None:
    await serve_socket(socket, sim_state, SARVAM, "tts", _Synthesis)

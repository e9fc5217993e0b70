"""Deepgram's live WebSockets: ``/v1/listen`` (audio in, ``Results`` out, one per second of audio;
``KeepAlive``, ``Finalize``, ``CloseStream`` honoured; ``Metadata`` last) and ``/v1/speak``
(``Speak`` text, ``Flush`` for its audio then ``Flushed``, ``Clear``, ``Close``)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

from litestar import WebSocket, websocket
from litestar.di import NamedDependency

from app.simulator.audio import pcm_tone
from app.simulator.deepgram import DEEPGRAM, DEFAULT_TTS_MODEL, SECONDS_PER_CHAR, model_id_of
from app.simulator.live import LiveFaults, LiveSession, Transcriber, pcm_seconds, serve_socket, wav_rate
from app.simulator.state import SimulatorState
from app.wire import closes
from app.wire import deepgram as wire
from app.wire.frames import json_message

AnySocket = WebSocket[Any, Any, Any]
DEFAULT_LIVE_MODEL = "nova-3"
RESULT_SECONDS = 1.0
"""A ``Results`` message is sent for each second of audio received."""
SPEAK_CHUNK_SECONDS = 0.25


class _Listen(LiveSession):
    """One live transcription: the audio's format, what has been received and transcribed."""

    def __init__(self, socket: AnySocket, faults: LiveFaults) -> None:
        query = socket.query_params
        self.socket, self.faults = socket, faults
        self.encoding = query.get("encoding")
        self.rate = int(query.get("sample_rate") or 16000)
        self.channels = int(query.get("channels") or 1)
        self.model = query.get("model") or DEFAULT_LIVE_MODEL
        self.model_id = model_id_of(self.model)
        self.vad = query.get("vad_events", "").lower() == "true"
        self.utterances = bool(query.get("utterance_end_ms"))
        self.request_id = str(uuid.uuid4())
        self.transcriber = Transcriber(query.get("language") or "en")
        self.digest = hashlib.sha256()
        self.pending = 0
        """Bytes of PCM received and not yet transcribed."""
        self.header_seen = self.encoding is not None
        self.results = 0

    def audio(self, data: bytes) -> None:
        self.digest.update(data)
        if not self.header_seen:  # no encoding named: a container; WAV's header gives the rate
            self.header_seen = True
            rate = wav_rate(data)
            if rate is not None:
                self.rate, data = rate, data[44:]
        self.pending += len(data)

    @property
    def pending_seconds(self) -> float:
        return pcm_seconds(self.pending, self.rate, self.channels)

    async def frame(self, frame: bytes | str) -> bool:
        if isinstance(frame, bytes):
            self.audio(frame)
            return self.pending_seconds < RESULT_SECONDS or await self.result()
        kind = json_message(frame).get("type")
        if kind == "Finalize":
            return await self.result(from_finalize=True)
        if kind == "CloseStream":
            if await self.result(from_finalize=True):
                await self.close()
            return False
        return True

    async def result(self, *, from_finalize: bool = False) -> bool:
        """Transcribe what is pending; ``False`` when the session is to be dropped (a fault)."""
        seconds = self.pending_seconds
        if seconds <= 0:
            return True
        self.pending = 0
        start = self.transcriber.seconds
        if self.results == 0:
            if self.faults.first_result_delay:
                await asyncio.sleep(self.faults.first_result_delay)
            if self.vad:
                await self.socket.send_json(wire.speech_started(start))
        text = self.transcriber.transcribe(seconds)
        await self.socket.send_json(wire.results(text, start, seconds, request_id=self.request_id, model=self.model,
                                                 model_id=self.model_id, from_finalize=from_finalize))
        self.results += 1
        return not (self.faults.drop_after_first and self.results == 1)

    async def close(self) -> None:
        if self.utterances and self.results:
            await self.socket.send_json(wire.utterance_end(self.transcriber.seconds))
        created = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        await self.socket.send_json(wire.listen_metadata(
            request_id=self.request_id, sha256=self.digest.hexdigest(), created=created,
            duration=self.transcriber.seconds, model=self.model, model_id=self.model_id))
        await self.socket.close(closes.NORMAL)


class _Speak(LiveSession):
    """One live synthesis: the text spoken since the last flush, and the flushes so far."""

    def __init__(self, socket: AnySocket, faults: LiveFaults) -> None:
        query = socket.query_params
        self.socket, self.faults = socket, faults
        self.rate = int(query.get("sample_rate") or 24000)
        self.model = query.get("model") or DEFAULT_TTS_MODEL
        self.text: list[str] = []
        self.flushes = 0

    async def start(self) -> None:
        await self.socket.send_json(wire.speak_metadata(request_id=str(uuid.uuid4()), model=self.model,
                                                        model_id=model_id_of(self.model)))

    async def frame(self, frame: bytes | str) -> bool:
        data = json_message(frame)
        kind = data.get("type")
        if kind == "Speak":
            self.text.append(str(data.get("text", "")))
        elif kind == "Flush":
            return await self.flush()
        elif kind == "Clear":
            self.text.clear()
            await self.socket.send_json(wire.cleared(self.flushes))
        elif kind == "Close":
            await self.socket.close(closes.NORMAL)
            return False
        return True

    async def flush(self) -> bool:
        """The audio of the text so far, in chunks, then ``Flushed``; ``False`` when a fault drops the socket."""
        if self.flushes == 0 and self.faults.first_result_delay:
            await asyncio.sleep(self.faults.first_result_delay)
        audio = pcm_tone(len("".join(self.text)) * SECONDS_PER_CHAR, self.rate)
        self.text.clear()
        size = max(2, int(self.rate * SPEAK_CHUNK_SECONDS) * 2)
        for start in range(0, len(audio), size):
            await self.socket.send_bytes(audio[start:start + size])
            if self.faults.drop_after_first:
                return False
        await self.socket.send_json(wire.flushed(self.flushes))
        self.flushes += 1
        return True


@websocket("/v1/listen")
async def listen(socket: AnySocket, sim_state: NamedDependency[SimulatorState]) -> None:
    await serve_socket(socket, sim_state, DEEPGRAM, "stt", _Listen)


@websocket("/v1/speak")
async def speak(socket: AnySocket, sim_state: NamedDependency[SimulatorState]) -> None:
    await serve_socket(socket, sim_state, DEEPGRAM, "tts", _Speak)

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
from litestar.exceptions import WebSocketDisconnect

from app.simulator.audio import pcm_tone
from app.simulator.deepgram import DEEPGRAM, DEFAULT_TTS_MODEL, SECONDS_PER_CHAR, model_id_of
from app.simulator.live import LiveFaults, Transcriber, admit_socket, next_frame, pcm_seconds, wav_rate
from app.simulator.state import SimulatorState
from app.wire import closes
from app.wire import deepgram as wire
from app.wire.frames import json_message

AnySocket = WebSocket[Any, Any, Any]
DEFAULT_LIVE_MODEL = "nova-3"
RESULT_SECONDS = 1.0
"""A ``Results`` message is sent for each second of audio received."""
SPEAK_CHUNK_SECONDS = 0.25


class _Listen:
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


@websocket("/v1/listen")
async def listen(socket: AnySocket, sim_state: NamedDependency[SimulatorState]) -> None:
    faults = await admit_socket(socket, sim_state, DEEPGRAM, "stt")
    if faults is None:
        return
    await socket.accept()
    session = _Listen(socket, faults)
    try:
        while True:
            frame = await next_frame(socket)
            if frame is None:
                return
            if isinstance(frame, bytes):
                session.audio(frame)
                if session.pending_seconds >= RESULT_SECONDS and not await session.result():
                    return  # dropped, no close frame
                continue
            kind = json_message(frame).get("type")
            if kind == "Finalize" and not await session.result(from_finalize=True):
                return
            if kind == "CloseStream":
                if await session.result(from_finalize=True):
                    await session.close()
                return
    except WebSocketDisconnect:
        return


@websocket("/v1/speak")
async def speak(socket: AnySocket, sim_state: NamedDependency[SimulatorState]) -> None:
    faults = await admit_socket(socket, sim_state, DEEPGRAM, "tts")
    if faults is None:
        return
    await socket.accept()
    query = socket.query_params
    rate = int(query.get("sample_rate") or 24000)
    model = query.get("model") or DEFAULT_TTS_MODEL
    await socket.send_json(wire.speak_metadata(request_id=str(uuid.uuid4()), model=model, model_id=model_id_of(model)))
    text: list[str] = []
    flushes = 0
    try:
        while True:
            frame = await next_frame(socket)
            if frame is None:
                return
            data = json_message(frame)
            kind = data.get("type")
            if kind == "Speak":
                text.append(str(data.get("text", "")))
            elif kind == "Flush":
                if flushes == 0 and faults.first_result_delay:
                    await asyncio.sleep(faults.first_result_delay)
                audio = pcm_tone(len("".join(text)) * SECONDS_PER_CHAR, rate)
                text.clear()
                size = max(2, int(rate * SPEAK_CHUNK_SECONDS) * 2)
                for start in range(0, len(audio), size):
                    await socket.send_bytes(audio[start:start + size])
                    if faults.drop_after_first:
                        return
                await socket.send_json(wire.flushed(flushes))
                flushes += 1
            elif kind == "Clear":
                text.clear()
                await socket.send_json(wire.cleared(flushes))
            elif kind == "Close":
                await socket.close(closes.NORMAL)
                return
    except WebSocketDisconnect:
        return

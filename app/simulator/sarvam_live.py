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
from litestar.exceptions import WebSocketDisconnect

from app.simulator.audio import synth_wav
from app.simulator.live import LiveFaults, Transcriber, admit_socket, next_frame, pcm_seconds, wav_rate
from app.simulator.sarvam import DEFAULT_SAMPLE_RATE, SARVAM, speech_seconds
from app.simulator.state import SimulatorState
from app.wire import closes
from app.wire import sarvam as wire
from app.wire.frames import json_message

AnySocket = WebSocket[Any, Any, Any]
RESULT_SECONDS = 1.0


class _Transcription:
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


@websocket("/speech-to-text/ws")
async def speech_to_text(socket: AnySocket, sim_state: NamedDependency[SimulatorState]) -> None:
    faults = await admit_socket(socket, sim_state, SARVAM, "stt")
    if faults is None:
        return
    await socket.accept()
    session = _Transcription(socket, faults)
    try:
        while True:
            frame = await next_frame(socket)
            if frame is None:
                return
            data = json_message(frame)
            if isinstance(data.get("audio"), dict):
                try:
                    session.audio(data["audio"])
                except (binascii.Error, ValueError):
                    await socket.send_json(wire.stt_error("audio data is not base64", "invalid_request_error"))
                    await socket.close(closes.POLICY, "audio data is not base64")
                    return
                if session.pending >= RESULT_SECONDS and not await session.result():
                    return
            elif data.get("type") == "flush" and not await session.result():
                return
    except WebSocketDisconnect:
        return


@websocket("/text-to-speech/ws")
async def text_to_speech(socket: AnySocket, sim_state: NamedDependency[SimulatorState]) -> None:
    faults = await admit_socket(socket, sim_state, SARVAM, "tts")
    if faults is None:
        return
    await socket.accept()
    completion = socket.query_params.get("send_completion_event", "").lower() == "true"
    configured: dict[str, Any] | None = None
    text: list[str] = []
    flushes = 0
    try:
        while True:
            frame = await next_frame(socket)
            if frame is None:
                return
            data = json_message(frame)
            kind = data.get("type")
            body: dict[str, Any] = data["data"] if isinstance(data.get("data"), dict) else {}
            if kind == "config":
                configured = body
            elif kind == "ping":
                continue
            elif configured is None:
                await socket.send_json(wire.tts_error("Send a config message first.", 400))
            elif kind == "text":
                text.append(str(body.get("text", "")))
            elif kind == "flush" and text:
                if flushes == 0 and faults.first_result_delay:
                    await asyncio.sleep(faults.first_result_delay)
                rate = int(configured.get("speech_sample_rate") or DEFAULT_SAMPLE_RATE)
                wav = synth_wav(speech_seconds("".join(text)), rate)
                text.clear()
                await socket.send_json(wire.tts_audio(base64.b64encode(wav).decode(), request_id=wire.new_request_id()))
                if faults.drop_after_first:
                    return
                if completion:
                    await socket.send_json(wire.tts_final())
                flushes += 1
    except WebSocketDisconnect:
        return

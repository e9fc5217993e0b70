"""The simulator's live WebSockets on their own: each provider's credentials and error shape at
the handshake, its control messages, and a hang that ends when its fault is cleared."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from app.simulator import create_simulator_app
from tests.support import LiveServer, live_server

LISTEN = "/_sim/deepgram/v1/listen?encoding=linear16&sample_rate=16000"
DEEPGRAM = {"Authorization": "Token sim"}


@pytest.fixture
def simulator() -> Iterator[LiveServer]:
    with live_server(create_simulator_app()) as server:
        yield server


def ws(server: LiveServer, path: str) -> str:
    return server.url.replace("http", "ws", 1) + path


async def test_no_key_is_refused_in_each_providers_shape(simulator: LiveServer) -> None:
    with pytest.raises(InvalidStatus) as deepgram:
        async with connect(ws(simulator, LISTEN)):
            pass
    assert deepgram.value.response.status_code == 401
    assert json.loads(deepgram.value.response.body or b"")["err_code"] == "INVALID_AUTH"
    with pytest.raises(InvalidStatus) as sarvam:
        async with connect(ws(simulator, "/_sim/sarvam/speech-to-text/ws")):
            pass
    assert sarvam.value.response.status_code == 403
    assert json.loads(sarvam.value.response.body or b"")["error"]["code"] == "invalid_api_key_error"


async def test_listen_honours_keepalive_finalize_and_closestream(simulator: LiveServer) -> None:
    async with connect(ws(simulator, LISTEN + "&vad_events=true&utterance_end_ms=1000"),
                       additional_headers=DEEPGRAM) as socket:
        await socket.send(json.dumps({"type": "KeepAlive"}))
        await socket.send(b"\0" * 16000)  # half a second: no result yet
        await socket.send(json.dumps({"type": "Finalize"}))
        started, result = json.loads(await socket.recv()), json.loads(await socket.recv())
        await socket.send(json.dumps({"type": "CloseStream"}))
        end, metadata = json.loads(await socket.recv()), json.loads(await socket.recv())
        await socket.wait_closed()
    assert started["type"] == "SpeechStarted"
    assert (result["type"], result["duration"], result["from_finalize"]) == ("Results", 0.5, True)
    assert end == {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": 0.5}
    assert (metadata["type"], metadata["duration"]) == ("Metadata", 0.5)
    assert socket.close_code == 1000


async def test_speak_clear_drops_the_text(simulator: LiveServer) -> None:
    async with connect(ws(simulator, "/_sim/deepgram/v1/speak?sample_rate=16000"),
                       additional_headers=DEEPGRAM) as socket:
        assert json.loads(await socket.recv())["type"] == "Metadata"
        await socket.send(json.dumps({"type": "Speak", "text": "never said"}))
        await socket.send(json.dumps({"type": "Clear"}))
        assert json.loads(await socket.recv()) == {"type": "Cleared", "sequence_id": 0}
        await socket.send(json.dumps({"type": "Speak", "text": "said"}))
        await socket.send(json.dumps({"type": "Flush"}))
        audio = await socket.recv()
        assert isinstance(audio, bytes) and len(audio) == round(4 * 0.06 * 16000) * 2
        assert json.loads(await socket.recv()) == {"type": "Flushed", "sequence_id": 0}


async def test_sarvam_speech_needs_its_config_first(simulator: LiveServer) -> None:
    async with connect(ws(simulator, "/_sim/sarvam/text-to-speech/ws"),
                       additional_headers={"api-subscription-key": "sim"}) as socket:
        await socket.send(json.dumps({"type": "text", "data": {"text": "namaste"}}))
        error = json.loads(await socket.recv())
    assert error["type"] == "error" and "config" in error["data"]["message"]


async def test_a_hanging_upgrade_is_answered_once_the_fault_is_cleared(simulator: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=simulator.url) as control:
        fault = {"provider": "deepgram", "operation": "stt", "hang": True}
        assert (await control.put("/_sim/faults", json=fault)).status_code == 200
        opening = asyncio.ensure_future(connect(ws(simulator, LISTEN), additional_headers=DEEPGRAM, open_timeout=10))
        await asyncio.sleep(0.5)
        assert not opening.done()
        await control.delete("/_sim/faults")
        socket = await opening
        await socket.close()

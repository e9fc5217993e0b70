"""The official SDKs' streaming clients pointed at a gateway by their base URL only, and what the
tests send through them."""

from __future__ import annotations

import base64
from typing import Any

from deepgram import AsyncDeepgramClient
from deepgram.environment import DeepgramClientEnvironment
from deepgram.speak.v1.types import SpeakV1Text
from sarvamai import AsyncSarvamAI
from sarvamai.environment import SarvamAIEnvironment

from app.simulator.audio import pcm_tone, synth_wav

CLIENT_KEY = "gw-stream-client-key"
RATE = 16000
FRAME = RATE * 2 // 10
"""100 ms of 16 kHz 16-bit mono PCM."""


def deepgram(gateway: str, key: str = CLIENT_KEY) -> AsyncDeepgramClient:
    base = f"{gateway}/deepgram"
    ws = base.replace("http", "ws", 1)
    return AsyncDeepgramClient(api_key=key, environment=DeepgramClientEnvironment(
        base=base, production=ws, agent=ws, agent_rest=base))


def sarvam(gateway: str, key: str = CLIENT_KEY) -> AsyncSarvamAI:
    base = f"{gateway}/sarvam"
    return AsyncSarvamAI(api_subscription_key=key, environment=SarvamAIEnvironment(
        base=base, creative=f"{base}/dubbing", production=base.replace("http", "ws", 1)))


def frames(seconds: float) -> list[bytes]:
    pcm = pcm_tone(seconds, RATE)
    return [pcm[i:i + FRAME] for i in range(0, len(pcm), FRAME)]


async def deepgram_transcripts(gateway: str, seconds: float, key: str = CLIENT_KEY) -> list[Any]:
    """Stream ``seconds`` of audio to Deepgram's live API through the gateway; every message back."""
    async with deepgram(gateway, key).listen.v1.connect(model="nova-3", encoding="linear16",
                                                         sample_rate=str(RATE)) as socket:
        for frame in frames(seconds):
            await socket.send_media(frame)
        await socket.send_close_stream()
        return [message async for message in socket]


async def deepgram_speech(gateway: str, text: str, key: str = CLIENT_KEY) -> tuple[bytes, list[Any]]:
    """Speak ``text`` through the gateway; the audio and the JSON messages back."""
    audio, messages = b"", []
    async with deepgram(gateway, key).speak.v1.connect(model="aura-2-thalia-en", encoding="linear16",
                                                        sample_rate=24000) as socket:
        await socket.send_text(SpeakV1Text(type="Speak", text=text))
        await socket.send_flush()
        async for message in socket:
            if isinstance(message, bytes):
                audio += message
                continue
            messages.append(message)
            if message.type == "Flushed":
                break
        await socket.send_close()
    return audio, messages


async def sarvam_transcript(gateway: str, seconds: float, key: str = CLIENT_KEY) -> Any:
    async with sarvam(gateway, key).speech_to_text_streaming.connect(language_code="hi-IN") as socket:
        await socket.transcribe(base64.b64encode(synth_wav(seconds, RATE)).decode(), sample_rate=RATE)
        return await socket.recv()


async def sarvam_speech(gateway: str, text: str, key: str = CLIENT_KEY) -> list[Any]:
    async with sarvam(gateway, key).text_to_speech_streaming.connect(model="bulbul:v2",
                                                                     send_completion_event=True) as socket:
        await socket.configure(target_language_code="hi-IN", speaker="anushka")
        await socket.convert(text)
        await socket.flush()
        return [await socket.recv(), await socket.recv()]

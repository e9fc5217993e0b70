"""Streamed WAV answers: their RIFF header checked, their chunks relayed, their seconds counted."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2

from ..calls import CallContext, ErrorType, GatewayError
from .upstream_errors import check_response


def wav_seconds(size: int, sample_rate: int) -> float:
    """Seconds in a 16-bit mono PCM WAV of ``size`` bytes (44-byte header)."""
    return max(0, size - 44) / (2 * sample_rate)


def check_wav_start(provider: str, chunk: bytes) -> None:
    """Raise ``upstream_malformed`` unless the first bytes of a streamed WAV are its RIFF header."""
    if not chunk.startswith(b"RIFF"):
        raise GatewayError(ErrorType.UPSTREAM_MALFORMED, f"{provider} sent audio without a WAV header")


async def relay_wav(
    provider: str, response: httpx2.Response, sample_rate: int, ctx: CallContext,
) -> AsyncIterator[bytes]:
    """A streamed WAV answer's chunks as they arrive, after its status and RIFF header are
    checked; the seconds of audio relayed go to ``ctx.audio_seconds`` at the end."""
    await check_response(provider, response)
    size = 0
    async for chunk in response.aiter_bytes():
        if size == 0 and chunk:
            check_wav_start(provider, chunk)
        size += len(chunk)
        yield chunk
    ctx.audio_seconds = wav_seconds(size, sample_rate)

"""The built-in prices of the providers that have no price library: Sarvam and Deepgram, in USD per
unit, as their public price pages stated them on the date below, and RAG (our own store, priced
at zero: its chat call is priced as ``openai.chat``). ``PRICES_FILE`` overrides any of them.

* Sarvam (``https://docs.sarvam.ai/api/getting-started/pricing``, pay-as-you-go, INR, read
  2026-09-20): speech to text ₹30 per hour (billed per second), Sarvam Translate ₹20 per 10K
  characters, Bulbul ₹30 per 10K characters (the page lists Bulbul v3; the gateway's default
  ``bulbul:v2`` is priced the same until a file says otherwise). Converted at :data:`INR_PER_USD`.
* Deepgram (``https://deepgram.com/pricing``, pay-as-you-go, USD, as listed 2026-11-04): Nova-3
  $0.0048 per minute (billed per second), Aura-2 $0.030 and Aura-1 $0.015 per 1,000 characters.
"""

from __future__ import annotations

from typing import Final

from ..config import PriceRule

PRICED_ON: Final = "2026-11-04"
"""The date the built-in prices were last checked against the providers' pages."""
INR_PER_USD: Final = 89.44
"""Rupees per US dollar used to convert Sarvam's INR prices (the rate of 2025-11-27)."""


def _inr(rupees: float, per: float) -> float:
    return rupees / per / INR_PER_USD


DEFAULT_RULES: Final = (
    PriceRule("sarvam", "translate", "*", {"character": _inr(20, 10_000)}),
    PriceRule("sarvam", "tts", "*", {"character": _inr(30, 10_000)}),
    PriceRule("sarvam", "stt", "*", {"audio_second": _inr(30, 3600)}),
    PriceRule("deepgram", "stt", "nova-3*", {"audio_second": 0.0048 / 60}),
    PriceRule("deepgram", "tts", "aura-2-*", {"character": 0.030 / 1000}),
    PriceRule("deepgram", "tts", "aura-*", {"character": 0.015 / 1000}),
    PriceRule("rag", "ingest", "*", {"document": 0.0}),
    PriceRule("rag", "query", "*", {"query": 0.0}),
)
"""Tried in order after ``PRICES_FILE``'s rules (the first whose model glob matches wins)."""

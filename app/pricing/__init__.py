"""What a provider call cost: its usage in billed units (:func:`billed_usage`) times the price of
its provider, operation and model (:class:`Prices`).

Prices come, first match wins, from ``PRICES_FILE``, then for OpenAI from ``genai-prices`` (its
bundled snapshot, never fetched at run time), then from the dated built-in table of
:mod:`.defaults`. A model none of them prices has an unknown cost (``None``, never zero), and one
``price.unknown`` warning names it.

``genai-prices`` resolves a model's rates once per model and UTC day (its price history has dated
changes); each call then costs one ``calc_unit_price`` per unit (the library's own tier rules),
about 2 µs, where its whole ``calc_price`` takes about 0.27 ms (bench/README.md, "Pricing").
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import Final

from genai_prices import data_snapshot
from genai_prices.types import TieredPrices, calc_unit_price

from ..calls import CallContext
from ..config import PriceRule
from ..logs import events
from .defaults import DEFAULT_RULES

Rate = Decimal | TieredPrices
"""USD per :data:`PER` units of one billed unit (``genai-prices``' own representation)."""
Rates = Mapping[str, Rate]
PER: Final = 1_000_000
"""Rates are per million units, as ``genai-prices`` gives token prices."""
PRICE_UNKNOWN: Final = "price.unknown"

BILLED_UNITS: Final[Mapping[str, tuple[str, ...]]] = {
    "translate": ("character",), "tts": ("character",), "stt": ("audio_second",),
    "chat": ("input_token", "cached_input_token", "output_token"), "embeddings": ("input_token",),
    "ingest": ("document",), "query": ("query",),
}
"""The units each operation is billed by (whatever the provider)."""
_GENAI_KEYS: Final = {"input_token": "input_mtok", "cached_input_token": "cache_read_mtok",
                      "output_token": "output_mtok"}


def billed_usage(ctx: CallContext) -> dict[str, float]:
    """The call's usage in its operation's billed units: as the provider reported it (OpenAI's
    ``usage``), else as the gateway measured it. ``input_token`` counts the input tokens not served
    from the provider's cache, ``cached_input_token`` those that were."""
    measured: dict[str, float] = {
        "character": ctx.characters, "audio_second": ctx.audio_seconds, "document": ctx.documents,
        "query": ctx.queries, "output_token": ctx.output_tokens or 0,
        "input_token": (ctx.input_tokens or 0) - ctx.cached_input_tokens,
        "cached_input_token": ctx.cached_input_tokens,
    }
    return {unit: measured[unit] for unit in BILLED_UNITS.get(ctx.spec.operation, ())}


def _rates(usd_per_unit: Mapping[str, float]) -> dict[str, Rate]:
    return {unit: Decimal(repr(usd)) * PER for unit, usd in usd_per_unit.items()}


class Prices:
    """Prices by provider, operation and model, resolved once per model and day."""

    def __init__(self, rules: tuple[PriceRule, ...] = ()) -> None:
        self._rules = (*rules, *DEFAULT_RULES)
        self._library_from = len(rules)
        """Index in :attr:`_rules` where ``genai-prices`` is asked, before the built-in rules."""
        self._resolved: dict[tuple[str, str, str, date], Rates | None] = {}
        self._warned: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()
        data_snapshot.get_snapshot()  # load the library's price data now, not in the first call

    def cost(self, ctx: CallContext, model: str | None) -> float | None:
        """USD for ``ctx``'s billed usage with ``model`` (``None`` when no price is known)."""
        rates = self.rates(ctx.spec.provider, ctx.spec.operation, model or "")
        if rates is None:
            return None
        usage = billed_usage(ctx)
        return float(sum(calc_unit_price(rate, usage.get(unit, 0), ctx.input_tokens or 0, PER)
                         for unit, rate in rates.items()))

    def rates(self, provider: str, operation: str, model: str) -> Rates | None:
        today = datetime.now(UTC).date()
        key = (provider, operation, model, today)
        try:
            return self._resolved[key]
        except KeyError:
            pass
        found = self._resolve(provider, operation, model, today)
        with self._lock:
            self._resolved[key] = found
            if found is None and (provider, operation, model) not in self._warned:
                self._warned.add((provider, operation, model))
                events.emit(logging.WARNING, PRICE_UNKNOWN,
                            f"no price for {provider}.{operation} model {model or '(none)'}: its calls are counted "
                            "with cost unknown; give it one in PRICES_FILE",
                            provider=provider, operation=operation, model=model)
        return found

    def _resolve(self, provider: str, operation: str, model: str, day: date) -> Rates | None:
        for index, rule in enumerate(self._rules):
            if index == self._library_from and provider == "openai":
                library = _genai_prices(operation, model, day)
                if library is not None:
                    return library
            if rule.provider == provider and rule.operation == operation and fnmatchcase(model, rule.model):
                return _rates(rule.usd_per)
        return None


def _genai_prices(operation: str, model: str, day: date) -> Rates | None:
    """OpenAI's rates for ``model`` on ``day`` from ``genai-prices``' bundled snapshot."""
    if operation not in ("chat", "embeddings") or not model:
        return None
    try:
        _, info = data_snapshot.get_snapshot().find_provider_model(model, None, "openai", None)
    except LookupError:
        return None
    prices = info.get_prices(datetime(day.year, day.month, day.day, 12, tzinfo=UTC))
    rates: dict[str, Rate] = {}
    for unit in BILLED_UNITS[operation]:
        rate = getattr(prices, _GENAI_KEYS[unit], None)
        if unit == "cached_input_token" and rate is None:
            rate = prices.input_mtok  # no cache discount listed: cached tokens cost what others do
        if rate is None:
            return None
        rates[unit] = rate
    return rates

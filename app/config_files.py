"""The settings that live in files rather than variables: the price overrides (``PRICES_FILE``) and
the client budgets (``CLIENT_BUDGETS_FILE``), both YAML, read and validated once at start-up like
every variable: a bad file raises :class:`ConfigError` naming the variable, the place in the file
and what it accepts.

``PRICES_FILE`` maps provider, operation and model (a glob, ``*`` for any) to USD per unit::

    sarvam:
      tts:
        "bulbul:*": {character: 0.0000337}
    openai:
      chat:
        my-finetune: {input_token: 0.0000003, output_token: 0.0000012}

``CLIENT_BUDGETS_FILE`` maps client names (those of ``GATEWAY_API_KEYS``, or ``anonymous``) to
their budgets::

    team-a: {daily_usd: 5, monthly_usd: 100, enforce: true, max_in_flight: 1}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import yaml

from .config_env import ConfigError

UNITS: Final = ("character", "audio_second", "input_token", "cached_input_token", "output_token", "document", "query")
"""What a call is billed by: text characters sent (translate, TTS), seconds of audio transcribed (STT),
tokens (chat, embeddings; ``cached_input_token`` are input tokens the provider served from its cache),
documents ingested and queries answered (RAG)."""
ANONYMOUS: Final = "anonymous"
"""The client of calls made without a named key."""


@dataclass(frozen=True)
class PriceRule:
    """USD per unit for the calls of ``provider.operation`` whose model matches ``model`` (a glob)."""

    provider: str
    operation: str
    model: str
    usd_per: Mapping[str, float]


@dataclass(frozen=True)
class ClientBudget:
    """One client's spend limits in USD per UTC day and month, and whether they refuse calls."""

    client: str
    daily_usd: float | None = None
    monthly_usd: float | None = None
    enforce: bool = False
    """Over budget, the client's calls are refused with 429 ``budget_exceeded`` (else only reported)."""
    max_in_flight: int = 1
    """Calls of the client one replica lets run at once while ``enforce`` is on: the fleet can
    overspend the budget by at most this many calls per replica (their cost is known only at the end)."""


def _load(variable: str, path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as file:
            return yaml.safe_load(file)
    except OSError:
        raise ConfigError(variable, "the path of a readable YAML file", path) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(variable, f"a YAML file ({path} is not valid YAML{where})") from None


def _price(variable: str, where: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ConfigError(variable, f"a number of USD >= 0 at {where}", str(value))
    return float(value)


def load_prices(path: str, providers: Mapping[str, tuple[str, ...]]) -> tuple[PriceRule, ...]:
    """The rules of ``PRICES_FILE`` for ``providers`` (name to operations), in file order."""
    variable = "PRICES_FILE"
    data = _load(variable, path)
    if data is None:
        return ()
    if not isinstance(data, dict):
        raise ConfigError(variable, f"a mapping of provider to operation to model to prices ({path})")
    rules: list[PriceRule] = []
    for provider, operations in data.items():
        if provider not in providers:
            raise ConfigError(variable, f"a provider among {', '.join(providers)} (got {provider!r} in {path})")
        if not isinstance(operations, dict):
            raise ConfigError(variable, f"a mapping of operation to models at {provider}")
        for operation, models in operations.items():
            if operation not in providers[provider]:
                raise ConfigError(variable, f"an operation of {provider} among {', '.join(providers[provider])} "
                                            f"(got {operation!r})")
            if not isinstance(models, dict):
                raise ConfigError(variable, f"a mapping of model (a glob) to prices at {provider}.{operation}")
            for model, prices in models.items():
                where = f"{provider}.{operation}.{model}"
                if not isinstance(prices, dict) or not prices:
                    raise ConfigError(variable, f"a mapping of unit to USD per unit at {where}")
                unknown = [unit for unit in prices if unit not in UNITS]
                if unknown:
                    raise ConfigError(variable, f"units among {', '.join(UNITS)} at {where} (got {unknown[0]!r})")
                usd = {unit: _price(variable, f"{where}.{unit}", value) for unit, value in prices.items()}
                rules.append(PriceRule(provider, operation, str(model), usd))
    return tuple(rules)


_BUDGET_FIELDS: Final = {"daily_usd", "monthly_usd", "enforce", "max_in_flight"}


def load_budgets(path: str, clients: tuple[str, ...]) -> dict[str, ClientBudget]:
    """The budgets of ``CLIENT_BUDGETS_FILE``, each for one of ``clients`` (named keys, or anonymous)."""
    variable = "CLIENT_BUDGETS_FILE"
    data = _load(variable, path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(variable, f"a mapping of client name to budget ({path})")
    budgets: dict[str, ClientBudget] = {}
    for client, fields in data.items():
        if client not in clients:
            raise ConfigError(variable, f"client names among {', '.join(clients)} "
                                        f"(the names of GATEWAY_API_KEYS; got {client!r})")
        if not isinstance(fields, dict) or not fields.keys() <= _BUDGET_FIELDS:
            raise ConfigError(variable, f"a mapping of {', '.join(sorted(_BUDGET_FIELDS))} at {client}")
        limits = {name: _price(variable, f"{client}.{name}", fields[name]) if fields.get(name) is not None else None
                  for name in ("daily_usd", "monthly_usd")}
        if limits["daily_usd"] is None and limits["monthly_usd"] is None:
            raise ConfigError(variable, f"daily_usd or monthly_usd at {client}")
        enforce = fields.get("enforce", False)
        if not isinstance(enforce, bool):
            raise ConfigError(variable, f"true or false at {client}.enforce", str(enforce))
        in_flight = fields.get("max_in_flight", 1)
        if isinstance(in_flight, bool) or not isinstance(in_flight, int) or in_flight < 1:
            raise ConfigError(variable, f"an integer >= 1 at {client}.max_in_flight", str(in_flight))
        budgets[client] = ClientBudget(str(client), limits["daily_usd"], limits["monthly_usd"], enforce, in_flight)
    return budgets

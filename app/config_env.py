"""Typed values from an environment mapping, each refusal a :class:`ConfigError` naming the variable
and what it accepts (``SARVAM_RATE_LIMIT: expected an integer >= 1 (got 'lots')``); secrets are
never echoed. :mod:`app.config` builds the settings with it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A setting has a value the gateway cannot use; the message names the variable."""

    def __init__(self, variable: str, accepts: str, value: str | None = None, secret: bool = False) -> None:
        shown = "" if value is None or secret else f" (got {value!r})"
        super().__init__(f"{variable}: expected {accepts}{shown}")
        self.variable = variable


class Secret:
    """A secret string that never shows itself in ``repr``, ``str``, logs or JSON."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:
        raise TypeError("secrets are not serialisable")


_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(ms|s|m|h|d)?)+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)?")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


LATENCY_BUCKETS: Final[tuple[float, ...]] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0, 15.0, 30.0, 60.0,
)
"""Seconds; the provider call histograms and the in-app recorder share them, so that both compute
the same quantiles (re-exported by :mod:`app.calls`). Here, at the bottom layer, so that the
configuration can check that ``SLO_LATENCY_THRESHOLD`` is one of them."""


def parse_duration(text: str) -> float:
    """Seconds from a Prometheus duration (``30s``, ``5m``, ``1h30m``, ``500ms``) or plain seconds."""
    text = text.strip()
    if not text or not _DURATION.match(text):
        raise ValueError(text)
    return sum(float(n) * _UNIT_SECONDS[u or None] for n, u in _DURATION_PART.findall(text))


def format_duration(seconds: float) -> str:
    """The shortest Prometheus duration for a number of seconds (``300`` -> ``5m``)."""
    ms = round(seconds * 1000)
    if ms % 1000:
        return f"{ms}ms"
    s = ms // 1000
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s and s % size == 0:
            return f"{s // size}{unit}"
    return f"{s}s"


class Env:
    """Reads typed values from an environment mapping; empty values count as unset."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        return value if value is not None and value.strip() != "" else None

    def _get(self, name: str, default: T, parse: Callable[[str], T], accepts: str) -> T:
        raw = self.raw(name)
        if raw is None:
            return default
        try:
            return parse(raw.strip())
        except (ValueError, TypeError):
            raise ConfigError(name, accepts, raw) from None

    def integer(self, name: str, default: int, minimum: int = 0) -> int:
        def parse(raw: str) -> int:
            value = int(raw)
            if value < minimum:
                raise ValueError(raw)
            return value

        return self._get(name, default, parse, f"an integer >= {minimum}")

    def number(self, name: str, default: float, minimum: float = 0.0, exclusive: bool = True) -> float:
        def parse(raw: str) -> float:
            value = float(raw)
            if not math.isfinite(value) or value < minimum or (exclusive and value == minimum):
                raise ValueError(raw)
            return value

        bound = ">" if exclusive else ">="
        return self._get(name, default, parse, f"a number {bound} {minimum:g}")

    def ratio(self, name: str, default: float) -> float:
        def parse(raw: str) -> float:
            value = float(raw)
            if not 0.0 < value < 1.0:
                raise ValueError(raw)
            return value

        return self._get(name, default, parse, "a ratio between 0 and 1, exclusive (e.g. 0.95)")

    def duration(self, name: str, default: float, allow_zero: bool = False) -> float:
        def parse(raw: str) -> float:
            value = parse_duration(raw)
            if value < 0 or (value == 0 and not allow_zero):
                raise ValueError(raw)
            return value

        bound = ">= 0" if allow_zero else "> 0"
        return self._get(name, default, parse, f"a duration such as 30s, 5m, 1h or plain seconds, {bound}")

    def boolean(self, name: str, default: bool) -> bool:
        def parse(raw: str) -> bool:
            lowered = raw.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)

        return self._get(name, default, parse, "true or false")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        def parse(raw: str) -> str:
            if raw.lower() not in choices:
                raise ValueError(raw)
            return raw.lower()

        return self._get(name, default, parse, " or ".join(choices))

    def url(self, name: str) -> str | None:
        def parse(raw: str) -> str:
            if not re.match(r"^https?://[^\s/]+", raw):
                raise ValueError(raw)
            return raw.rstrip("/")

        return self._get(name, None, parse, "an http:// or https:// URL")

    def _secret_text(self, name: str) -> str | None:
        """The value of ``NAME``, or the content of the file ``NAME_FILE`` names (the Docker
        secrets convention); an empty value or file counts as unset."""
        raw = self.raw(name)
        path = self.raw(f"{name}_FILE")
        if raw is None and path is not None:
            try:
                with open(path.strip(), encoding="utf-8") as file:
                    raw = file.read()
            except OSError:
                raise ConfigError(f"{name}_FILE", "the path of a readable file", path) from None
        return raw if raw is not None and raw.strip() else None

    def secret(self, name: str) -> Secret | None:
        raw = self._secret_text(name)
        return Secret(raw.strip()) if raw is not None else None

    def secrets(self, name: str) -> tuple[Secret, ...]:
        raw = self._secret_text(name)
        if raw is None:
            return ()
        return tuple(Secret(part.strip()) for part in raw.split(",") if part.strip())

"""The subset of Prometheus's alert templates the rules use, rendered the way Prometheus does.

Supported actions: ``{{ $labels.NAME }}``, ``{{ $value }}`` (Go's ``%v``), and ``$value`` piped
through ``humanizePercentage``, ``humanizeDuration`` or ``printf "<one float verb>"``; and one
query, the value of a series of the alert's provider operation as a percentage::

    {{ with printf "NAME{provider=%q, operation=%q}" $labels.provider $labels.operation | query }}
    {{ . | first | value | humanizePercentage }}{{ end }}

(on one line), whose value the caller gives by ``NAME`` (nothing when absent, like an empty
result). Anything else raises :class:`ValueError`, so a rule that the in-app engine cannot render
fails its tests.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal

_ACTION = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_LABEL = re.compile(r"^\$labels\.([A-Za-z_][A-Za-z0-9_]*)$")
_QUERY = re.compile(
    r'\{\{\s*with printf "([A-Za-z_:][A-Za-z0-9_:]*)\{provider=%q, operation=%q\}" \$labels\.provider '
    r"\$labels\.operation \| query\s*\}\}\{\{\s*\. \| first \| value \| humanizePercentage\s*\}\}"
    r"\{\{\s*end\s*\}\}")
_PRINTF = re.compile(r'^printf\s+"(%[-+ 0#]*\d*(?:\.\d+)?[eEfFgG])"$')


def render(template: str, labels: Mapping[str, str], value: float, queries: Mapping[str, float] | None = None) -> str:
    """``template`` with its actions replaced, like Prometheus's alert template expansion;
    ``queries``: the queried series' values by name."""
    found = queries or {}

    def query(match: re.Match[str]) -> str:
        name = match.group(1)
        return humanize_percentage(found[name]) if name in found else ""

    def action(match: re.Match[str]) -> str:
        text = match.group(1)
        label = _LABEL.match(text)
        if label:
            return labels.get(label.group(1), "")
        head, _, pipe = (part.strip() for part in text.partition("|"))
        if head != "$value":
            raise ValueError(f"unsupported template action {{{{ {text} }}}}")
        if not pipe:
            return go_float(value)
        if pipe == "humanizePercentage":
            return humanize_percentage(value)
        if pipe == "humanizeDuration":
            return humanize_duration(value)
        printf = _PRINTF.match(pipe)
        if printf:
            return printf.group(1) % value
        raise ValueError(f"unsupported template function in {{{{ {text} }}}}")

    return _ACTION.sub(action, _QUERY.sub(query, template))


def humanize_percentage(value: float) -> str:
    """Prometheus's ``humanizePercentage``."""
    return f"{value * 100:.4g}%"


def go_float(value: float) -> str:
    """Go's ``fmt`` ``%v`` of a float64: shortest digits, exponent below 1e-4 or from 1e21."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    exact = Decimal(repr(value))
    sign, digits, exponent = exact.normalize().as_tuple()
    assert isinstance(exponent, int)
    x = len(digits) + exponent - 1
    if x < -4 or x >= 21:
        mantissa = str(digits[0]) + ("." + "".join(map(str, digits[1:])) if len(digits) > 1 else "")
        return f"{'-' if sign else ''}{mantissa}e{'+' if x >= 0 else '-'}{abs(x):02d}"
    return format(exact.normalize(), "f")


def humanize_duration(value: float) -> str:
    """Prometheus's ``humanizeDuration`` template function."""
    if math.isnan(value) or math.isinf(value):
        return go_float(value)
    if value == 0:
        return "0s"
    if abs(value) >= 1:
        sign = "-" if value < 0 else ""
        value = abs(value)
        whole = int(value)
        seconds, minutes = whole % 60, (whole // 60) % 60
        hours, days = (whole // 3600) % 24, whole // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{value:.4g}s"
    prefix = ""
    for candidate in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(value) >= 1:
            break
        prefix = candidate
        value *= 1000
    return f"{value:.4g}{prefix}s"

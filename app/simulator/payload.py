"""Reading and checking request bodies.

Provider routes parse their own bodies (rather than letting Litestar validate a typed ``data``) so that a bad
request gets the provider's own error shape. A failed check raises :class:`InvalidRequest`, which each provider
module turns into its error body.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection
from typing import Any


class InvalidRequest(Exception):
    """The request is not valid for the simulated API; ``str(exc)`` is the message sent back."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.status_code = status_code


def json_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, or :class:`InvalidRequest`."""
    try:
        body = json.loads(raw)
    except ValueError:
        raise InvalidRequest("Request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise InvalidRequest("Request body must be a JSON object.")
    return body


def text_field(
    body: dict[str, Any],
    name: str,
    *,
    required: bool = True,
    choices: Collection[str] | None = None,
    max_length: int | None = None,
) -> str | None:
    """A string field; absent or null counts as missing, and a required string must not be blank."""
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidRequest(f"{name}: Field required")
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{name}: Input should be a valid string")
    if required and not value.strip():
        raise InvalidRequest(f"{name}: String should have at least 1 character")
    if choices is not None and value not in choices:
        raise InvalidRequest(f"{name}: Input should be one of {', '.join(sorted(choices))}; got {value!r}")
    if max_length is not None and len(value) > max_length:
        raise InvalidRequest(f"{name}: String should have at most {max_length} characters")
    return value


def int_choice(value: object, name: str, choices: Collection[int], default: int) -> int:
    """A whole number out of ``choices``, given as a JSON number or a numeric string (query strings, forms);
    ``24000.0`` counts, as clients that type sample rates as floats send that."""
    if value is None or value == "":
        return default
    try:
        number = (
            float(value) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else math.nan
        )
    except ValueError:
        number = math.nan
    if not number.is_integer():
        raise InvalidRequest(f"{name}: Input should be a valid integer")
    if int(number) not in choices:
        allowed = ", ".join(str(c) for c in sorted(choices))
        raise InvalidRequest(f"{name}: Input should be one of {allowed}; got {value!r}")
    return int(number)

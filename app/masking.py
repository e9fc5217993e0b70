"""Secret masking that never changes a log's shape: values are masked, names never are.

Field names, event names and logger names are left as they are, so that an operator's search and a
pipeline keyed on names keep working whatever the secrets are. Inside values:

* a field that is a secret by its name (``authorization``, ``api_key``, ``password``, ``token``...)
  has its value masked whole, always;
* a value that is exactly a configured secret is masked whole;
* a configured secret of :data:`MIN_SEARCHED` characters or more is masked wherever it occurs in a
  value; a shorter one is not searched for inside other text, where it would match ordinary words
  (a one-character development key would mask every ``k``): :attr:`SecretMask.unsearched` names
  its variable, for the one warning at start.

Imports nothing of ours: the log formatters (``logging_setup``) and the OTLP log processor
(``logs``) share it.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

MASK: Final = "**********"
MIN_SEARCHED: Final = 8
"""Characters a secret needs to be searched for inside other text."""
SECRET_NAME: Final = re.compile(
    r"(?:^|[._-])(?:authorization|api[_-]?keys?|password|passwd|secret|token|cookie|credentials?)$", re.IGNORECASE)
"""A field whose name ends so carries a secret (``x-api-key``, ``client_secret``, not ``total_tokens``)."""


def is_secret_name(name: str) -> bool:
    return SECRET_NAME.search(name) is not None


class SecretMask:
    """Masks the configured secrets, given as ``(variable, value)`` pairs, in values only."""

    def __init__(self, secrets: Iterable[tuple[str, str]]) -> None:
        pairs = [(name, value) for name, value in secrets if value]
        self._whole = frozenset(value for _, value in pairs)
        self._searched = sorted({v for _, v in pairs if len(v) >= MIN_SEARCHED}, key=len, reverse=True)
        self.unsearched: list[str] = sorted({name for name, value in pairs if len(value) < MIN_SEARCHED})
        """The variables whose secret is too short to be searched for inside text."""

    def text(self, text: str) -> str:
        """``text`` with every searched secret masked (longest first: a key containing another
        is masked whole), or the mask alone when ``text`` is a secret."""
        if text in self._whole:
            return MASK
        for secret in self._searched:
            text = text.replace(secret, MASK)
        return text

    def value(self, name: str, value: Any) -> Any:
        """The value of field ``name`` masked, nested mappings and sequences included (their
        keys are names, and kept)."""
        if value is None:
            return None
        if is_secret_name(name):
            return MASK
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {key: self.value(str(key), item) for key, item in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.value(name, item) for item in value]
        if isinstance(value, int | float | datetime.date | datetime.time):  # bool is an int
            return value
        return self.text(str(value))  # an exception, a path, any object: as the line would show it

    def fields(self, fields: Mapping[str, Any], kept: frozenset[str] = frozenset()) -> dict[str, Any]:
        """Every field's value masked but those named in ``kept`` (names, levels, ids)."""
        return {name: value if name in kept else self.value(name, value) for name, value in fields.items()}

"""What provider services and the service manager answer: typed results, never string-keyed dicts.

A JSON object crosses layers only where the JSON is itself the contract: a body as the caller
sent it in a provider's wire format (:data:`JSONObject`), and OpenAI's answers, which the
OpenAI-compatible routes return as the provider sent them (:class:`OpenAIAnswer`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T_co = TypeVar("T_co", covariant=True)

JSONObject = dict[str, Any]
"""A decoded JSON object in a provider's wire format: its fields are the provider's to judge, the
gateway reads only the few it checks (lengths, the model)."""


@dataclass(frozen=True, slots=True)
class Translation:
    translated_text: str
    source_language_code: str


@dataclass(frozen=True, slots=True)
class Transcript:
    transcript: str
    language_code: str


@dataclass(frozen=True, slots=True)
class OpenAIAnswer:
    """An OpenAI chat completion or embeddings answer, its JSON as the provider sent it."""

    body: JSONObject

    @property
    def text(self) -> str | None:
        """The first choice's message content (``None`` when there is none)."""
        choices = self.body.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return None
        message = choices[0].get("message")
        content = message.get("content") if isinstance(message, dict) else None
        return content if isinstance(content, str) else None


@dataclass(frozen=True, slots=True)
class Served(Generic[T_co]):
    """A result and who served it."""

    value: T_co
    provider: str
    fallback: bool = False

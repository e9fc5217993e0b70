"""Deterministic content for the simulated providers: translations, transcripts, chat replies, token counts and
embeddings. The same input always gives the same output."""

from __future__ import annotations

import hashlib
import math
import re
import struct
import unicodedata

_SCRIPTS: tuple[tuple[int, int, str], ...] = (
    (0x0900, 0x097F, "hi-IN"),  # Devanagari
    (0x0980, 0x09FF, "bn-IN"),  # Bengali
    (0x0A00, 0x0A7F, "pa-IN"),  # Gurmukhi
    (0x0A80, 0x0AFF, "gu-IN"),  # Gujarati
    (0x0B00, 0x0B7F, "od-IN"),  # Odia
    (0x0B80, 0x0BFF, "ta-IN"),  # Tamil
    (0x0C00, 0x0C7F, "te-IN"),  # Telugu
    (0x0C80, 0x0CFF, "kn-IN"),  # Kannada
    (0x0D00, 0x0D7F, "ml-IN"),  # Malayalam
)


def detect_language(text: str) -> str:
    """The language of the first Indic letter's script; text without one is English (``en-IN``)."""
    for char in text:
        code = ord(char)
        for low, high, language in _SCRIPTS:
            if low <= code <= high:
                return language
    return "en-IN"


_PHRASES: dict[str, dict[str, str]] = {
    "hello": {"hi-IN": "नमस्ते", "bn-IN": "নমস্কার", "ta-IN": "வணக்கம்", "te-IN": "నమస్కారం"},
    "thank you": {"hi-IN": "धन्यवाद", "bn-IN": "ধন্যবাদ", "ta-IN": "நன்றி", "te-IN": "ధన్యవాదాలు"},
    "good morning": {"hi-IN": "सुप्रभात", "bn-IN": "সুপ্রভাত", "ta-IN": "காலை வணக்கம்", "te-IN": "శుభోదయం"},
    "how are you?": {"hi-IN": "आप कैसे हैं?", "bn-IN": "আপনি কেমন আছেন?", "ta-IN": "நீங்கள் எப்படி இருக்கிறீர்கள்?"},
}
"""A few English phrases and their translations; anything else gets a bracketed stand-in."""


def translate(text: str, source: str, target: str) -> str:
    """A known phrase's translation (either direction through English), else ``[target] text``."""
    if source == target:
        return text
    key = text.strip().lower()
    if source == "en-IN" and key in _PHRASES and target in _PHRASES[key]:
        return _PHRASES[key][target]
    if target == "en-IN":
        for english, translations in _PHRASES.items():
            if translations.get(source) == text.strip():
                return english[0].upper() + english[1:]
    return f"[{target}] {text}"


_TRANSCRIPTS: dict[str, str] = {
    "en": "Hello, this is a simulated transcript of the uploaded audio.",
    "hi": "नमस्ते, यह अपलोड किए गए ऑडियो का नकली प्रतिलेख है।",
    "bn": "নমস্কার, এটি আপলোড করা অডিওর একটি নকল প্রতিলিপি।",
    "ta": "வணக்கம், இது பதிவேற்றிய ஒலியின் மாதிரி எழுத்துப்படி.",
    "te": "నమస్కారం, ఇది అప్‌లోడ్ చేసిన ఆడియో యొక్క నమూనా లిప్యంతరీకరణ.",
}


def transcript(language: str) -> str:
    """A fixed sentence for the language (``hi-IN`` and ``hi`` alike); English for languages without one."""
    return _TRANSCRIPTS.get(language.split("-", maxsplit=1)[0].lower(), _TRANSCRIPTS["en"])


_TOKEN = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    """A stand-in for a tokenizer: one token per word or punctuation mark."""
    return len(_TOKEN.findall(text))


def chat_reply(prompt: str) -> str:
    """The assistant's answer to the last user message."""
    return f"Simulated reply to: {prompt.strip()}" if prompt.strip() else "Simulated reply."


def reply_pieces(reply: str) -> list[str]:
    """The reply cut into stream deltas (a word with its leading space), which join back to the reply."""
    return re.findall(r"\s*\S+", reply) or [reply]


def embedding(tokens: list[str], dimensions: int) -> list[float]:
    """A unit vector: the sum of one pseudo-random vector per token (from a hash of the token).

    Texts sharing words point in similar directions, so retrieval over these vectors behaves plausibly.
    """
    total = [0] * dimensions
    for token in tokens or [""]:  # no words at all: the empty token's vector
        digest = hashlib.shake_256(token.encode()).digest(dimensions)
        total = [acc + byte - 128 for acc, byte in zip(total, digest, strict=True)]
    norm = math.sqrt(sum(value * value for value in total)) or 1.0
    return [value / norm for value in total]


def text_tokens(text: str) -> list[str]:
    """The words of ``text``, lowercased, punctuation dropped (Unicode-aware, so Indic vowel signs stay put)."""
    words = (
        "".join(c for c in word if not unicodedata.category(c).startswith("P"))
        for word in text.lower().split()
    )
    return [word for word in words if word]


def float32_le(values: list[float]) -> bytes:
    """Little-endian float32 bytes, the layout of OpenAI's base64 embeddings."""
    return struct.pack(f"<{len(values)}f", *values)

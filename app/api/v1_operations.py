"""OpenAPI operations of the ``/v1`` routes that read their body themselves (a ``data``
parameter would have Litestar read and convert it first): what they take, documented here so
that clients and the schema fuzz test know it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
)

_STRING = Schema(type=OpenAPIType.STRING)
_INTEGER = Schema(type=OpenAPIType.INTEGER)


@dataclass
class BodyOperation(Operation):
    """An operation whose request body is :attr:`body` as :attr:`media_type`."""

    media_type: ClassVar[str] = "application/json"
    body: ClassVar[Schema]

    def __post_init__(self) -> None:
        self.request_body = RequestBody(content={self.media_type: OpenAPIMediaType(schema=self.body)}, required=True)


@dataclass
class STTOperation(BodyOperation):
    """``/v1/stt``: a form with the audio file (spooled as it arrives)."""

    media_type: ClassVar[str] = "multipart/form-data"
    body: ClassVar[Schema] = Schema(type=OpenAPIType.OBJECT, required=["file", "language_code"], properties={
        "file": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY,
                       content_media_type="application/octet-stream"),
        "language_code": _STRING,
        "provider": Schema(one_of=[_STRING, Schema(type=OpenAPIType.NULL)]),
    })


@dataclass
class ChatOperation(BodyOperation):
    """``/v1/chat/completions``: OpenAI's chat body (other fields are passed on); with ``stream``
    true the answer is server-sent events."""

    body: ClassVar[Schema] = Schema(type=OpenAPIType.OBJECT, required=["messages"], properties={
        "messages": Schema(type=OpenAPIType.ARRAY, min_items=1, items=Schema(
            type=OpenAPIType.OBJECT, required=["role"], properties={"role": _STRING, "content": _STRING})),
        "model": _STRING,
        "stream": Schema(type=OpenAPIType.BOOLEAN),
    })

    def __post_init__(self) -> None:
        super().__post_init__()
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse) and ok.content is not None:
            ok.content["text/event-stream"] = OpenAPIMediaType(schema=_STRING)


@dataclass
class EmbeddingsOperation(BodyOperation):
    """``/v1/embeddings``: OpenAI's embeddings body (other fields are passed on)."""

    body: ClassVar[Schema] = Schema(type=OpenAPIType.OBJECT, required=["input", "model"], properties={
        "input": Schema(one_of=[  # a text, texts, tokens or token lists
            _STRING, Schema(type=OpenAPIType.ARRAY, min_items=1, items=_STRING),
            Schema(type=OpenAPIType.ARRAY, min_items=1, items=_INTEGER),
            Schema(type=OpenAPIType.ARRAY, min_items=1, items=Schema(type=OpenAPIType.ARRAY, items=_INTEGER))]),
        "model": _STRING,
        "encoding_format": Schema(type=OpenAPIType.STRING, enum=["float", "base64"]),
    })

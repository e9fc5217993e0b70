"""The path every simulated provider request takes before its handler runs, and the response helpers after it.

Order: record the request, check the credentials, then apply the fault in force (latency, hang, injected error).
What is left of the fault (malformed bodies, truncated or slowed streams) is handed to the handler as
:class:`Effects`. An early answer (bad credentials, an injected error) is raised as :class:`Refused`, and a
request the handler finds invalid as :class:`InvalidRequest`; the provider's router
(:meth:`ProviderWire.router`) turns both into the provider's own error shape.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from asyncio import Future
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from litestar import Request, Response, Router
from litestar.connection import ASGIConnection
from litestar.response import Stream
from litestar.response.base import ASGIResponse
from litestar.types import ControllerRouterHandler, Receive, Send

from app.simulator.faults import ActiveFault
from app.simulator.payload import InvalidRequest
from app.simulator.state import SimulatorState
from app.wire.errors import ErrorFactory, ErrorShape

HANG_CAP_SEC = 600.0
"""A hanging request gives up after this long even if nobody notices."""

POLL_SEC = 1.0
"""How often a waiting request checks whether the server is stopping (uvicorn has no event for it)."""

AnyRequest = Request[Any, Any, Any]
AnyConnection = ASGIConnection[Any, Any, Any, Any]


class Refused(Exception):
    """An answer sent instead of the handler's: bad credentials or an injected error."""

    def __init__(self, response: Response[Any]) -> None:
        super().__init__(response.status_code)
        self.response = response


@dataclass(frozen=True)
class ProviderWire:
    """How one provider speaks: its name, how it checks credentials and how its errors look."""

    errors: ErrorShape
    authorized: Callable[[AnyConnection], bool]
    """Whether a request or a WebSocket handshake carries credentials."""
    invalid: Callable[[InvalidRequest], Response[Any]] | None = None
    """The answer to an invalid request; by default :attr:`error` with the exception's status and message."""

    @property
    def name(self) -> str:
        return self.errors.name

    @property
    def auth_status(self) -> int:
        return self.errors.auth_status

    @property
    def error(self) -> ErrorFactory:
        return self.errors.error

    def router(self, path: str, route_handlers: Sequence[ControllerRouterHandler]) -> Router:
        """The provider's routes, answering :class:`Refused` and :class:`InvalidRequest` in its error shape."""

        def refused(_: AnyRequest, exc: Refused) -> Response[Any]:
            return exc.response

        def invalid(_: AnyRequest, exc: InvalidRequest) -> Response[Any]:
            return self.invalid(exc) if self.invalid else self.error(exc.status_code, str(exc))

        return Router(path, route_handlers=list(route_handlers),
                      exception_handlers={Refused: refused, InvalidRequest: invalid})


@dataclass(frozen=True)
class Effects:
    """What a fault asks of a successful response."""

    malformed: bool = False
    truncate: bool = False
    chunk_delay_sec: float = 0.0


NO_EFFECTS = Effects()


def new_id() -> str:
    return str(uuid.uuid4())


async def admit(request: AnyRequest, state: SimulatorState, wire: ProviderWire, operation: str) -> Effects:
    """Run the shared checks; raises :class:`Refused` with an early answer (auth failure, injected error)."""
    state.requests.record(
        provider=wire.name,
        operation=operation,
        method=request.method,
        path=request.url.path,
        traceparent=request.headers.get("traceparent"),
    )
    if not wire.authorized(request):
        raise Refused(wire.error(wire.auth_status))
    fault = state.faults.lookup(wire.name, operation)
    if fault is None:
        return NO_EFFECTS
    spec = fault.spec
    # Read the body now: afterwards the ASGI receive channel only carries the client's disconnect.
    await request.body()
    if spec.latency_ms:
        await _wait(request, spec.latency_ms / 1000)
    if spec.hang:
        await _wait(request, HANG_CAP_SEC, lambda: _still_hanging(state, wire.name, operation), state.faults.changed)
        if _still_hanging(
            state, wire.name, operation
        ):  # gave up: client gone, server stopping, or cap reached
            raise Refused(wire.error(503))
    if fault.next_request_fails(operation):
        raise Refused(_injected_error(wire, fault))
    return Effects(
        malformed=spec.malformed, truncate=spec.truncate, chunk_delay_sec=spec.chunk_delay_ms / 1000
    )


def _injected_error(wire: ProviderWire, fault: ActiveFault) -> Response[Any]:
    status = fault.spec.status_code
    headers = {"Retry-After": str(fault.spec.retry_after)} if status == 429 else None
    return wire.error(status, headers=headers)


def _still_hanging(state: SimulatorState, provider: str, operation: str) -> bool:
    fault = state.faults.lookup(provider, operation)
    return fault is not None and fault.spec.hang


async def _wait(
    request: AnyRequest, seconds: float, keep_waiting: Callable[[], bool] = lambda: True,
    changed: Callable[[], Future[None]] | None = None,
) -> None:
    """Wait up to ``seconds``, stopping early when the client disconnects, ``keep_waiting()`` turns
    false (looked at when the fault table ``changed()``) or the server starts shutting down (so a
    hang never holds up a graceful shutdown).

    One timer per request: the disconnect and fault changes are awaited, not polled; only the
    shutdown probe is looked at every :data:`POLL_SEC`.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    disconnected = asyncio.ensure_future(_disconnect(request.receive))
    shutting_down = _shutdown_probe(request.receive)
    try:
        while keep_waiting() and not disconnected.done() and not shutting_down():
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            awaited = {disconnected, changed()} if changed is not None else {disconnected}
            await asyncio.wait(awaited, timeout=min(POLL_SEC, remaining), return_when=asyncio.FIRST_COMPLETED)
    finally:
        disconnected.cancel()


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _shutdown_probe(receive: Receive) -> Callable[[], bool]:
    """A check for "the server is shutting down", where the server lets us see it.

    ASGI has no shutdown signal for requests in flight (lifespan shutdown comes only after they finish). Uvicorn
    marks each in-flight request cycle ``keep_alive = False`` when shutdown begins, and its ``receive`` is a bound
    method of that cycle, so a flip of that flag is the signal. Elsewhere the probe says no, and a hang ends on
    client disconnect, on clearing the fault, or at the cap.
    """
    cycle: Any = getattr(receive, "__self__", None)
    if not isinstance(getattr(cycle, "keep_alive", None), bool) or not cycle.keep_alive:
        return lambda: False
    return lambda: not cycle.keep_alive


def json_response(
    body: Any, effects: Effects, *, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response[bytes]:
    """A JSON response; a malformed one is cut in half, as if the upstream died mid-body."""
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    if effects.malformed:
        raw = raw[: len(raw) // 2]
    return Response(raw, status_code=status_code, media_type="application/json", headers=dict(headers or {}))


def stream_response(
    chunks: Sequence[bytes], effects: Effects, *, media_type: str, headers: Mapping[str, str] | None = None
) -> Response[Any]:
    """A chunked response sending ``chunks`` one by one, paced by the fault's chunk delay; when the fault
    truncates, the connection drops after the first chunk."""
    if effects.truncate:
        return DroppedStream(chunks[0], status_code=200, media_type=media_type, headers=dict(headers or {}))
    paced = _paced(chunks, effects.chunk_delay_sec)
    return Stream(paced, status_code=200, media_type=media_type, headers=dict(headers or {}))


async def _paced(chunks: Sequence[bytes], delay_sec: float) -> AsyncIterator[bytes]:
    for index, chunk in enumerate(chunks):
        if index and delay_sec:
            await asyncio.sleep(delay_sec)
        yield chunk


class _FirstChunkThenDrop(ASGIResponse):
    """Sends the status, headers and one body chunk, then returns without ending the body, so the server closes
    the connection mid-stream (uvicorn logs "ASGI callable returned without completing response")."""

    _should_set_content_length = False

    async def send_body(self, send: Send, receive: Receive) -> None:
        await send({"type": "http.response.body", "body": self.body, "more_body": True})


class DroppedStream(Response[bytes]):
    """A streamed response that stops after its first chunk without completing."""

    def to_asgi_response(self, app: Any, request: AnyRequest, **kwargs: Any) -> ASGIResponse:
        return _FirstChunkThenDrop(
            body=self.content,
            headers=dict(self.headers),
            media_type=str(self.media_type),
            status_code=self.status_code,
        )

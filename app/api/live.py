"""Live (WebSocket) sessions through the one door: the caller's socket relayed to the provider's.

A session passes the door as a call does (:meth:`Pipeline.session`): the caller's key, then the
query's audio format (validation), then a rate-limit permit, a bulkhead slot and a breaker permit
held until the session ends, and the upgrade to the provider under its timeout. A refusal answers
the handshake with its HTTP status and body where the server can (uvicorn can), else closes it
with 1008 (the caller's input or key) or 1013 (try again later: rate limit, bulkhead, breaker),
1011 for a provider that failed the upgrade, the reason starting with the ``error_type``.

Once accepted, messages are relayed both ways as they come. The session ends when either side
closes (the provider's close code is relayed to the caller, the caller's to the provider), when
the provider drops its socket or sends no first result within its timeout after the caller's
first message that asks for one (1011), when the caller sends nothing for
``STREAM_IDLE_TIMEOUT``, sends a message over ``STREAM_MAX_FRAME_BYTES`` or the session reaches
``P_MAX_STREAM_SECONDS`` (1008), or when the server shuts down (1012, :mod:`.shutdown_grace`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from litestar import Response, WebSocket
from litestar.datastructures import Headers, MultiDict
from litestar.exceptions import WebSocketDisconnect

from ..calls import CallContext, ErrorType, GatewayError, ServiceKey
from ..providers.base import Session
from ..providers.service_manager import ServiceManager
from ..resilience.auth import check_client
from ..wire import closes
from ..wire.handshake import deny

AnySocket = WebSocket[Any, Any, Any]
Upstream = aiohttp.ClientWebSocketResponse
Frame = bytes | str
Outcome = tuple[int, str, GatewayError | None]
"""How a session ended: the close code and reason the caller gets, and the provider's failure."""

TRY_AGAIN = frozenset({ErrorType.RATE_LIMITED, ErrorType.UPSTREAM_RATE_LIMITED, ErrorType.OVERLOADED,
                       ErrorType.CIRCUIT_OPEN})
SERVER_CLOSES = frozenset({1011, 1012, 1013, 1014})
"""A provider's close codes that say it failed (the others are about the caller's input)."""
UNSENDABLE = frozenset({1005, 1006, 1015})


def _same(frame: Frame, _: MultiDict[str]) -> Frame | None:
    return frame


def _query(query: MultiDict[str]) -> list[tuple[str, str]]:
    return list(query.multi_items())


@dataclass(frozen=True)
class LiveProtocol:
    """One live API as the gateway relays it."""

    provider: str
    operation: str
    path: str
    """The provider's path, under its base URL."""
    check: Callable[[MultiDict[str]], None]
    """Validates the handshake's query (raises ``invalid(...)``)."""
    count: Callable[[Frame, MultiDict[str], CallContext], None]
    """Adds a caller's message to the session's usage (audio seconds, characters)."""
    asks: Callable[[Frame], bool]
    """Whether a caller's message asks for a result (the provider's timeout to answer starts)."""
    is_result: Callable[[Frame], bool]
    """Whether a provider's message is a result (a transcript, or audio)."""
    params: Callable[[MultiDict[str]], list[tuple[str, str]]] = _query
    """The provider's query, from the caller's (the drop-in routes: as sent)."""
    to_provider: Callable[[Frame, MultiDict[str]], Frame | None] = _same
    """A caller's message as the provider takes it (``None``: not relayed)."""
    to_caller: Callable[[Frame, MultiDict[str]], Frame | None] = _same
    """A provider's message as the caller takes it (``None``: not relayed)."""


@dataclass(frozen=True)
class LiveRoute:
    """Where a live route's caller puts its key, and how its refusals are written."""

    client_key: Callable[[Headers], str]
    refusal: Callable[[GatewayError], Response[Any]]
    unauthorized: Callable[[str], Response[Any]]

    async def serve(self, socket: AnySocket, protocol: LiveProtocol) -> None:
        """A drop-in session: the caller's key, then the door, then the relay."""
        if not await self.authorized(socket, protocol.provider):
            return
        try:
            session = await self.open(socket, protocol)
        except GatewayError as error:
            await self.refuse(socket, error)
            return
        await self.run(socket, session, protocol)

    async def authorized(self, socket: AnySocket, provider: str) -> bool:
        """Whether the caller's key is one of ``GATEWAY_API_KEYS`` (when set); refuses it if not."""
        if check_client(socket.app.state.service_manager.settings, self.client_key(socket.headers)):
            return True  # the session's usage and cost are the key's name's
        detail = f"a valid gateway client key is required as the {provider} SDK's key"
        await _refuse(socket, self.unauthorized(detail), closes.POLICY, closes.reason("unauthorized", detail))
        return False

    @staticmethod
    async def open(socket: AnySocket, protocol: LiveProtocol) -> Session[Upstream]:
        """The session through the door: validation, admission and the provider's upgrade."""
        manager: ServiceManager = socket.app.state.service_manager
        service = manager.by_key[ServiceKey(protocol.provider, protocol.operation)]
        query = socket.query_params

        async def connect(_: CallContext) -> Upstream:
            return await manager.live.connect(service, protocol.path, protocol.params(query))

        # Priced by the model the provider is asked for (none: the price is unknown, never zero).
        model = dict(protocol.params(query)).get("model")
        return await manager.pipeline.session(service.spec(model), connect,
                                              validate=lambda: protocol.check(query))

    async def refuse(self, socket: AnySocket, error: GatewayError) -> None:
        await _refuse(socket, self.refusal(error), close_code(error), closes.reason(error.error_type, error.detail))

    @staticmethod
    async def run(socket: AnySocket, session: Session[Upstream], protocol: LiveProtocol,
                  greeting: Frame | None = None) -> None:
        """Accept the caller's socket (sending ``greeting`` first, if any) and relay until the end."""
        try:
            await socket.accept()
            if greeting is not None:
                await socket.send_text(greeting) if isinstance(greeting, str) else await socket.send_bytes(greeting)
        except BaseException:
            await _close_upstream(session.upstream, closes.GOING_AWAY)
            await session.end(closes.GOING_AWAY, "the caller left during the handshake", None)
            raise
        await relay(socket, session, protocol, socket.app.state.service_manager)


def close_code(error: GatewayError) -> int:
    if error.error_type in TRY_AGAIN:
        return closes.TRY_AGAIN_LATER
    if error.is_rejection:
        return closes.POLICY
    return closes.INTERNAL


async def _refuse(socket: AnySocket, response: Response[Any], code: int, reason: str) -> None:
    await deny(socket, response.status_code or 500, response.content, media_type=str(response.media_type),
               headers=dict(response.headers), close_code=code, reason=reason)


async def relay(socket: AnySocket, session: Session[Upstream], protocol: LiveProtocol, manager: ServiceManager) -> None:
    """Relay the session's messages both ways until it ends; then close both sides and end it."""
    settings = manager.settings
    cfg = settings.get_service_config(protocol.provider)
    loop = asyncio.get_running_loop()
    upstream = session.upstream
    query = socket.query_params
    ended: asyncio.Future[Outcome] = loop.create_future()
    """Set by the session's timers: no first result, the caller idle, the session too long."""
    first_due: asyncio.TimerHandle | None = None
    caller_gone = False
    heard = loop.time()
    """When the caller's last message came (one timer per session checks it, not one per message)."""

    idle_timer: asyncio.TimerHandle | None = None

    def end(outcome: Outcome) -> None:
        if not ended.done():
            ended.set_result(outcome)

    def no_first_result() -> None:
        if session.first_result is None:
            error = GatewayError(ErrorType.TIMEOUT, f"{protocol.provider} sent no result within {cfg.timeout:g} s")
            end((closes.INTERNAL, closes.reason(error.error_type, error.detail), error))

    def idle_check() -> None:
        nonlocal idle_timer
        quiet = loop.time() - heard
        if quiet >= settings.stream_idle_timeout:
            detail = f"the caller sent nothing for STREAM_IDLE_TIMEOUT ({settings.stream_idle_timeout:g} s)"
            end((closes.POLICY, closes.reason(ErrorType.INVALID_INPUT, detail), None))
        else:
            idle_timer = loop.call_later(settings.stream_idle_timeout - quiet, idle_check)

    def too_long() -> None:
        detail = f"the session reached P_MAX_STREAM_SECONDS ({cfg.max_stream_seconds:g} s)"
        end((closes.POLICY, closes.reason(ErrorType.INVALID_INPUT, detail), None))

    idle_timer = loop.call_later(settings.stream_idle_timeout, idle_check)
    length_timer = loop.call_later(cfg.max_stream_seconds, too_long)

    async def inbound() -> Outcome:
        nonlocal first_due, heard, caller_gone
        limit = settings.stream_max_frame_bytes
        while True:
            message: Any = await socket.receive()
            heard = loop.time()
            if message["type"] == "websocket.disconnect":
                caller_gone = True
                return int(message.get("code") or closes.NORMAL), str(message.get("reason") or ""), None
            frame: Frame = message["bytes"] if message.get("bytes") is not None else message.get("text") or ""
            if len(frame) > limit:
                detail = f"a message of {len(frame)} bytes is over STREAM_MAX_FRAME_BYTES ({limit})"
                return closes.POLICY, closes.reason(ErrorType.INVALID_INPUT, detail), None
            protocol.count(frame, query, session.ctx)
            if first_due is None and session.first_result is None and protocol.asks(frame):
                first_due = loop.call_later(cfg.timeout, no_first_result)
            sent = protocol.to_provider(frame, query)
            if sent is None:
                continue
            session.message("in")
            await (upstream.send_bytes(sent) if isinstance(sent, bytes) else upstream.send_str(sent))

    async def outbound() -> Outcome:
        nonlocal caller_gone
        while True:
            message = await upstream.receive()
            if message.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                frame: Frame = message.data
                if session.first_result is None and protocol.is_result(frame):
                    session.result()
                    if first_due is not None:
                        first_due.cancel()
                sent = protocol.to_caller(frame, query)
                if sent is None:
                    continue
                session.message("out")
                try:
                    await (socket.send_bytes(sent) if isinstance(sent, bytes) else socket.send_text(sent))
                except (WebSocketDisconnect, OSError):
                    caller_gone = True
                    return closes.GOING_AWAY, "", None
                continue
            return upstream_close(protocol.provider, upstream.close_code, message)

    tasks = [asyncio.ensure_future(inbound()), asyncio.ensure_future(outbound()), ended]
    outcome: Outcome = (closes.INTERNAL, "", None)
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        outcome = _outcome(next(iter(done)), protocol.provider)
    finally:
        for task in tasks:
            task.cancel()
        for timer in (first_due, idle_timer, length_timer):
            if timer is not None:
                timer.cancel()
        code, reason, error = outcome
        await _close_upstream(upstream, code if caller_gone else closes.NORMAL)
        if not caller_gone:
            with contextlib.suppress(Exception):  # the caller may be gone by now
                await socket.close(code if code not in UNSENDABLE else closes.INTERNAL, reason)
        await session.end(code, reason, error)


def _outcome(task: asyncio.Future[Outcome], provider: str) -> Outcome:
    if task.cancelled():  # the server cancelled the session (pragma: no cover - uvicorn does not)
        return closes.GOING_AWAY, "", None
    exc = task.exception()
    if exc is None:
        return task.result()
    if isinstance(exc, aiohttp.ClientError | ConnectionError):
        error = GatewayError(ErrorType.CONNECTION, f"{provider} dropped the session")
        return closes.INTERNAL, closes.reason(error.error_type, error.detail), error
    raise exc


def upstream_close(provider: str, code: int | None, message: aiohttp.WSMessage) -> Outcome:
    """The provider closed or dropped its socket: its close relayed, and whether it failed the session."""
    reason = str(message.extra or "") if message.type is aiohttp.WSMsgType.CLOSE else ""
    if code is None or code in UNSENDABLE:
        error = GatewayError(ErrorType.CONNECTION, f"{provider} dropped the session")
        return closes.INTERNAL, closes.reason(error.error_type, error.detail), error
    if code in SERVER_CLOSES:
        return code, reason, GatewayError(ErrorType.UPSTREAM_5XX, f"{provider} closed the session with {code}")
    if code not in (closes.NORMAL, closes.GOING_AWAY):
        return code, reason, GatewayError(ErrorType.UPSTREAM_4XX, f"{provider} closed the session with {code}")
    return code, reason, None


async def _close_upstream(upstream: Upstream, code: int) -> None:
    if not upstream.closed:
        with contextlib.suppress(Exception):
            await upstream.close(code=code if code not in UNSENDABLE and code < 5000 else closes.NORMAL)

"""The one door every provider call passes through.

Order: input validation (invalid input costs nothing and never reaches a provider), then for each
attempt: the client's budget -> rate limit -> circuit breaker -> the HTTP call under the provider's
timeout -> error categorisation -> the call's cost -> telemetry and the in-app recorder, through
:class:`CallObserver` hooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pybreaker
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind

from ..calls import (
    CURRENT_SPEND,
    CallContext,
    CallEvent,
    CallObserver,
    CallSpec,
    Direction,
    ErrorType,
    GatewayError,
    Outcome,
    Relay,
    ServiceKey,
    StreamObserver,
)
from ..config import ANONYMOUS, Settings
from ..pricing import Prices
from ..resilience.breaker import AsyncCircuitBreaker, Permit
from ..resilience.budgets import Budgets, BudgetSlot
from ..resilience.bulkhead import Bulkhead, Slot
from ..resilience.ratelimit import RateLimiter, rate_limited
from ..resilience.shared_state import SharedState
from .http_client import CURRENT_CALL
from .spans import end_span, mark_span, span_attributes, usage_attributes
from .upstream_errors import categorize

T = TypeVar("T")
MESSAGE_BATCH = 32
"""A live session tells its observers of the messages it relayed this many at a time."""
WAIT_ATTRIBUTE = "gateway.call.wait"
"""Span attribute: seconds the attempt waited inside the gateway before its request was written."""


@dataclass(slots=True)
class _Admitted:
    """What one admitted attempt holds until it ends: its breaker permit, bulkhead slot and place
    among its client's calls in flight (none for an active health check), and when its request
    could be written."""

    permit: Permit | None
    slot: Slot | None
    budget: BudgetSlot | None = None
    started: float = field(default_factory=time.perf_counter)

    def provider_time(self, ctx: CallContext) -> float:
        return time.perf_counter() - self.started - ctx.connect_wait


class _BreakerEvents(pybreaker.CircuitBreakerListener):
    """Turns pybreaker's state changes into span events and observer calls."""

    def __init__(self, spec: CallSpec, observers: Sequence[CallObserver]) -> None:
        self.spec = spec
        self.observers = observers

    def state_change(self, cb: pybreaker.CircuitBreaker, old: Any, new: Any) -> None:
        old_name = old.name if old is not None else "closed"
        trace.get_current_span().add_event(
            "circuit_breaker.state_change",
            {"provider": self.spec.provider, "operation": self.spec.operation,
             "circuit.state.from": old_name, "circuit.state.to": new.name},
        )
        for observer in self.observers:
            observer.on_breaker_change(self.spec, old_name, new.name)


@dataclass
class Pipeline:
    """Owns the breakers, the rate limiter, the bulkheads and the observers every provider call
    goes through."""

    settings: Settings
    limiter: RateLimiter = field(default_factory=RateLimiter)
    observers: list[CallObserver] = field(default_factory=list)
    breakers: dict[ServiceKey, AsyncCircuitBreaker] = field(default_factory=dict)
    upstream_blocked_until: dict[str, float] = field(default_factory=dict)
    """Monotonic time before which a provider that answered 429 with Retry-After is not called."""
    clock: Callable[[], float] = time.monotonic
    breaker_clock: Callable[[], float] = time.time
    """Epoch seconds for the breakers' openings (the shared store keeps them as such)."""
    tracer: trace.Tracer = field(default_factory=lambda: trace.get_tracer("app.providers"))
    shared: SharedState | None = None
    """Rate limits, holds and breakers shared by replicas (from ``STATE_REDIS_URL`` unless given)."""
    hold_listeners: list[Callable[[CallSpec, float], None]] = field(default_factory=list)
    """Told the seconds of each hold a provider's ``Retry-After`` starts (cheap, must not raise)."""
    stream_observers: list[StreamObserver] = field(default_factory=list)
    """Told when live sessions open and end and of each message they relay."""
    bulkheads: dict[str, Bulkhead] = field(init=False)
    """Per provider, the calls in flight in this process against ``P_MAX_CONCURRENCY``."""
    prices: Prices = field(init=False)
    budgets: Budgets = field(init=False)
    """The clients' spend (shared through :attr:`shared`) and their enforced budgets."""

    def __post_init__(self) -> None:
        if self.shared is None and self.settings.state_redis_url:
            self.shared = SharedState(self.settings.state_redis_url)
        self.prices = Prices(self.settings.prices)
        self.budgets = Budgets(self.settings.budgets, self.shared)
        self.bulkheads = {name: Bulkhead(name, cfg.max_concurrency) for name, cfg in self.settings.services.items()}

    def breaker(self, spec: CallSpec) -> AsyncCircuitBreaker:
        found = self.breakers.get(spec.key)
        if found is None:
            cfg = self.settings.get_service_config(spec.provider)
            found = AsyncCircuitBreaker(
                str(spec.key), cfg.max_failures, cfg.circuit_reset_time,
                listeners=[_BreakerEvents(spec, self.observers)],
                storage=self.shared.breaker_storage(str(spec.key)) if self.shared is not None else None,
                clock=self.breaker_clock,
            )
            self.breakers[spec.key] = found
        return found

    async def headroom(self, provider: str) -> int:
        """Calls the provider's rate limit still admits in the current window (shared while
        Redis answers, this replica's otherwise)."""
        cfg = self.settings.get_service_config(provider)
        shared = self.shared
        limiter = shared.limiter if shared is not None and shared.health().status == "up" else self.limiter
        return await limiter.remaining(provider, cfg.rate_limit, self.settings.rate_limit_window)

    async def call(
        self,
        spec: CallSpec,
        attempt: Callable[[CallContext], Awaitable[T]],
        *,
        validate: Callable[[], object] | None = None,
        health_check: bool = False,
    ) -> T:
        """Run ``attempt`` through the door; raises :class:`GatewayError` on failure."""
        ctx = CallContext(spec=spec, client=self._client())
        try:
            self._validate(ctx, validate)
            result, admitted = await self._attempts(ctx, lambda: attempt(ctx), health_check)
            with self._current(ctx):
                self._succeeded(ctx, admitted, health_check)
            await self._settle(ctx, admitted)
            return result
        except BaseException as exc:
            mark_span(ctx.span, exc)
            raise
        finally:
            usage_attributes(ctx)
            ctx.span.end()

    async def stream(
        self,
        spec: CallSpec,
        open_stream: Callable[[CallContext], AsyncIterator[bytes]],
        *,
        validate: Callable[[], object] | None = None,
    ) -> Relay:
        """Open a streamed call and wait for its first chunk (fallbacks can still happen until
        then); the returned iterator relays the rest and records the outcome when it ends. The
        call holds its bulkhead slot until then."""
        ctx = CallContext(spec=spec, client=self._client())

        async def first_chunk() -> tuple[AsyncIterator[bytes], bytes]:
            chunks = open_stream(ctx)
            return chunks, await anext(chunks, b"")

        try:
            self._validate(ctx, validate)
            (chunks, first), admitted = await self._attempts(ctx, first_chunk, False)
        except BaseException as exc:
            end_span(ctx.span, exc)
            raise
        ctx.ttfb = admitted.provider_time(ctx)
        return _Relay(self, ctx, admitted, first, chunks)

    async def session(
        self,
        spec: CallSpec,
        connect: Callable[[CallContext], Awaitable[T]],
        *,
        validate: Callable[[], object] | None = None,
    ) -> Session[T]:
        """Open a live session: validation, then the attempts to ``connect`` (its upgrade) under the
        provider's timeout, each admitted like any call. The session holds its rate-limit permit's
        worth, its bulkhead slot and its breaker permit until :meth:`Session.end`."""
        ctx = CallContext(spec=spec, client=self._client())
        try:
            self._validate(ctx, validate)
            upstream, admitted = await self._attempts(ctx, lambda: connect(ctx), False)
        except BaseException as exc:
            end_span(ctx.span, exc)
            raise
        return Session(self, ctx, admitted, upstream)

    async def _attempts(
        self, ctx: CallContext, run: Callable[[], Awaitable[T]], health_check: bool,
    ) -> tuple[T, _Admitted]:
        """Admit and run each attempt under the provider's timeout, retrying failures that say
        the provider is unwell (``P_MAX_RETRIES``); returns the result with what its attempt holds."""
        attempts = 1 + self.settings.get_service_config(ctx.spec.provider).max_retries
        for n in range(attempts):
            ctx.attempt = n
            asked = time.perf_counter()
            admitted = await self._admit(ctx, health_check)
            ctx.admission_wait, ctx.connect_wait = admitted.started - asked, 0.0
            if ctx.span is INVALID_SPAN:
                ctx.span = self.tracer.start_span(ctx.spec.span_name, kind=SpanKind.CLIENT,
                                                  attributes=span_attributes(ctx.spec))
            if admitted.permit is not None:
                ctx.span.set_attribute("provider.circuit.state", self.breaker(ctx.spec).state)
            token = CURRENT_CALL.set(ctx)
            try:
                with self._current(ctx):
                    async with asyncio.timeout(self._timeout(ctx.spec)):
                        return await run(), admitted
            except BaseException as exc:
                with self._current(ctx):
                    error = self._failed(ctx, admitted, exc, health_check)
                await self._settle()
                if n + 1 < attempts and error.counts_as_breaker_failure:
                    continue
                raise error from exc
            finally:
                CURRENT_CALL.reset(token)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- the steps -------------------------------------------------------------------------

    def _timeout(self, spec: CallSpec) -> float:
        return self.settings.get_service_config(spec.provider).timeout

    @staticmethod
    def _client() -> str:
        """Who the current request's calls are for (named by the client key guard)."""
        spend = CURRENT_SPEND.get()
        return spend.client if spend is not None and spend.client else ANONYMOUS

    @staticmethod
    def _current(ctx: CallContext) -> contextlib.AbstractContextManager[Span]:
        """Make the provider span current (so the HTTP client span and breaker events nest under it)."""
        return trace.use_span(ctx.span, end_on_exit=False, record_exception=False, set_status_on_exception=False)

    def _validate(self, ctx: CallContext, validate: Callable[[], object] | None) -> None:
        if validate is None:
            return
        try:
            validate()
        except GatewayError as error:
            self._rejected(ctx, error)
            raise

    async def _admit(self, ctx: CallContext, health_check: bool) -> _Admitted:
        """The provider's Retry-After hold, then the client's budget, then its bulkhead, then rate
        limit and breaker; active health checks skip them all (they must see a provider recover while its breaker
        is open, must not spend the clients' budget, and are never refused for want of a slot).
        With shared state, the rate limit and breaker are one Redis round trip; when Redis is
        down, the replica's own limiter and breaker decide. The bulkhead is always this process's."""
        spec = ctx.spec
        if health_check:
            return _Admitted(None, None)
        cfg = self.settings.get_service_config(spec.provider)
        window = self.settings.rate_limit_window
        breaker = self.breaker(spec)
        slot: Slot | None = None
        budget: BudgetSlot | None = None
        try:
            self._check_hold(spec, self.upstream_blocked_until.get(spec.provider, 0.0) - self.clock())
            budget = await self.budgets.admit(ctx.client)
            slot = self.bulkheads[spec.provider].acquire(spec.operation)
            admission = None if self.shared is None else await self.shared.admit(
                spec.provider, str(spec.key), cfg.rate_limit, window, cfg.circuit_reset_time, cfg.timeout + 1.0)
            if admission is None:
                await self.limiter.hit(spec.provider, cfg.rate_limit, window)
                permit = breaker.acquire()
            else:
                if admission.verdict == "held":
                    self._check_hold(spec, admission.wait)
                if admission.verdict == "limited":
                    raise rate_limited(spec.provider, cfg.rate_limit, window, admission.wait)
                permit = breaker.acquire_shared(admission.breaker)
        except BaseException as error:
            if slot is not None:
                slot.release()
            if budget is not None:
                budget.release()
            if isinstance(error, GatewayError):
                self._rejected(ctx, error)
            raise
        return _Admitted(permit, slot, budget)

    @staticmethod
    def _check_hold(spec: CallSpec, remaining: float) -> None:
        if remaining > 0:
            raise GatewayError(
                ErrorType.UPSTREAM_RATE_LIMITED,
                f"{spec.provider} asked us to wait before calling it again",
                retry_after=float(max(1, round(remaining))),
            )

    async def _settle(self, ctx: CallContext | None = None, admitted: _Admitted | None = None) -> None:
        """Write this call's breaker changes and holds to the shared store before its answer
        leaves, so that other replicas see them on their next call (nothing to do on a
        success that changed nothing); for a call that succeeded (``ctx``), its cost to its
        client's spend, before its place among the client's calls in flight is freed."""
        if self.shared is not None:
            await self.shared.flush()
        if ctx is not None and admitted is not None:
            await self.budgets.settle(ctx.client, ctx.cost_usd, admitted.budget)

    def _rejected(self, ctx: CallContext, error: GatewayError) -> None:
        """A refusal before the provider was called: its span covers the call so far."""
        error.provider, error.operation = ctx.spec.provider, ctx.spec.operation
        if ctx.span is INVALID_SPAN:
            ctx.span = self.tracer.start_span(ctx.spec.span_name, kind=SpanKind.CLIENT,
                                              attributes=span_attributes(ctx.spec), start_time=ctx.began_ns)
        ctx.span.add_event(f"rejected.{error.error_type.value}", {"reason": error.error_type.value})
        # Holding calls during a provider's Retry-After is rate limiting by the gateway too.
        reason = ErrorType.RATE_LIMITED if error.error_type is ErrorType.UPSTREAM_RATE_LIMITED else error.error_type
        if error.is_rejection or reason is ErrorType.RATE_LIMITED:
            for observer in self.observers:
                observer.on_rejection(ctx.spec, reason)

    def _abandoned(self, ctx: CallContext, admitted: _Admitted) -> None:
        """Free what an attempt held when it ended without a word about the provider (cancelled)."""
        if admitted.slot is not None:
            admitted.slot.release()
        if admitted.budget is not None:
            admitted.budget.release()
        if admitted.permit is not None:
            self.breaker(ctx.spec).release(admitted.permit)

    def _failed(self, ctx: CallContext, admitted: _Admitted, exc: BaseException, health_check: bool) -> GatewayError:
        """Record a failed attempt and free what it held; cancellation is passed on unrecorded."""
        if isinstance(exc, asyncio.CancelledError | GeneratorExit | KeyboardInterrupt | SystemExit):
            self._abandoned(ctx, admitted)
            raise exc
        if admitted.slot is not None:
            admitted.slot.release()
        if admitted.budget is not None:  # a failed call is not billed
            admitted.budget.release()
        permit = admitted.permit
        breaker = self.breaker(ctx.spec)
        error = categorize(exc, ctx.spec.provider)
        error.provider, error.operation = ctx.spec.provider, ctx.spec.operation
        if error.error_type is ErrorType.UPSTREAM_RATE_LIMITED and error.retry_after:
            self.upstream_blocked_until[ctx.spec.provider] = self.clock() + error.retry_after
            if self.shared is not None:
                self.shared.hold(ctx.spec.provider, error.retry_after)
            for listener in self.hold_listeners:
                listener(ctx.spec, error.retry_after)
        if permit is None:
            pass
        elif error.counts_as_breaker_failure:
            breaker.record_failure(permit, exc)
        else:
            breaker.release(permit)
        self._emit(ctx, "error", error.error_type, admitted, health_check, error)
        return error

    def _succeeded(self, ctx: CallContext, admitted: _Admitted, health_check: bool) -> None:
        if admitted.slot is not None:
            admitted.slot.release()
        if admitted.permit is not None:
            self.breaker(ctx.spec).record_success(admitted.permit)
        if not health_check:
            self._price(ctx)
        self._emit(ctx, "success", None, admitted, health_check)

    def _price(self, ctx: CallContext) -> None:
        """The cost of a call that succeeded (failed calls are not billed), added to its request's."""
        ctx.cost_usd = self.prices.cost(ctx, ctx.spec.model or ctx.response_model)
        spend = CURRENT_SPEND.get()
        if spend is None:
            return
        if ctx.cost_usd is None:
            spend.unpriced += 1
        else:
            spend.priced += 1
            spend.cost_usd += ctx.cost_usd

    def _emit(
        self, ctx: CallContext, outcome: Outcome, error_type: ErrorType | None, admitted: _Admitted,
        health_check: bool, error: GatewayError | None = None,
    ) -> None:
        duration = ctx.latency if ctx.latency is not None else admitted.provider_time(ctx)
        ctx.span.set_attribute(WAIT_ATTRIBUTE, ctx.wait)
        event = CallEvent(ctx.spec, outcome, error_type, duration, ctx, health_check, error)
        for observer in self.observers:
            observer.on_call(event)


class _Relay:
    """Relays a stream after its first chunk, each further chunk within the provider's timeout;
    records the call, and frees its bulkhead slot, when the stream ends.

    A class rather than an async generator so that ``aclose`` before the first ``__anext__``
    (a caller that went away at once) still ends the call and frees its slot and a half-open trial.
    """

    def __init__(
        self, pipeline: Pipeline, ctx: CallContext, admitted: _Admitted, first: bytes, chunks: AsyncIterator[bytes],
    ) -> None:
        self._pipeline, self._ctx, self._admitted = pipeline, ctx, admitted
        self._first: bytes | None = first
        self._chunks = chunks
        self._done = False

    def __aiter__(self) -> _Relay:
        return self

    async def __anext__(self) -> bytes:
        if self._done:
            raise StopAsyncIteration
        if self._first is not None:
            first, self._first = self._first, None
            if first:
                return first
        try:
            with self._pipeline._current(self._ctx):
                # A provider that stalls mid-stream must not hold the caller forever.
                async with asyncio.timeout(self._pipeline._timeout(self._ctx.spec)):
                    return await anext(self._chunks)
        except StopAsyncIteration:
            self._finish(None)
            await self._pipeline._settle(self._ctx, self._admitted)
            raise
        except BaseException as exc:
            error = self._finish(exc)
            if not isinstance(exc, asyncio.CancelledError | GeneratorExit):
                await self._pipeline._settle()
            raise (error or exc) from exc

    async def aclose(self) -> None:
        self._finish(asyncio.CancelledError())
        aclose = getattr(self._chunks, "aclose", None)
        if aclose is not None:
            await aclose()
        await self._pipeline._settle()

    def _finish(self, exc: BaseException | None) -> GatewayError | None:
        """Record the call once; returns the categorised error of a failed stream."""
        if self._done:
            return None
        self._done = True
        pipeline, ctx, admitted = self._pipeline, self._ctx, self._admitted
        error: GatewayError | None = None
        with pipeline._current(ctx):
            if exc is None:
                pipeline._succeeded(ctx, admitted, False)
            elif isinstance(exc, asyncio.CancelledError | GeneratorExit):
                pipeline._abandoned(ctx, admitted)
            else:
                error = pipeline._failed(ctx, admitted, exc, False)
        usage_attributes(ctx)
        end_span(ctx.span, error or exc)
        return error


class Session(Generic[T]):
    """A live session past the door: its upstream connection, and what it holds until :meth:`end`.

    The session's span is the provider span (a child of the server span of the handshake), with
    ``first_result`` and ``close`` events. At its end the session is counted once, as a call: a
    failure when the provider failed it, else a success when it had a first result, its latency
    the time to that result; a session the caller or the gateway ended before any result is not
    counted (as a cancelled call is not).
    """

    def __init__(self, pipeline: Pipeline, ctx: CallContext, admitted: _Admitted, upstream: T) -> None:
        self._pipeline, self.ctx, self._admitted = pipeline, ctx, admitted
        self.upstream = upstream
        self.opened = time.perf_counter()
        self.first_result: float | None = None
        self._done = False
        self._messages: dict[Direction, int] = {"in": 0, "out": 0}
        for observer in pipeline.stream_observers:
            observer.on_stream_open(ctx.spec)

    def message(self, direction: Direction) -> None:
        """One message relayed; observers are told in batches of :data:`MESSAGE_BATCH` (a metric
        update per message would cost more than relaying it) and at the session's end."""
        count = self._messages[direction] + 1
        if count < MESSAGE_BATCH:
            self._messages[direction] = count
            return
        self._messages[direction] = 0
        for observer in self._pipeline.stream_observers:
            observer.on_stream_messages(self.ctx.spec, direction, count)

    def result(self) -> None:
        """A result reached the caller (a transcript, or audio); the first one is timed."""
        if self.first_result is None:
            self.first_result = time.perf_counter() - self.opened
            self.ctx.ttfb = self.first_result
            self.ctx.span.add_event("first_result", {"seconds": self.first_result})

    async def end(self, code: int, reason: str, error: GatewayError | None) -> None:
        """Record the session once, with the close the caller got; free what it holds."""
        if self._done:
            return
        self._done = True
        pipeline, ctx, admitted = self._pipeline, self.ctx, self._admitted
        seconds = time.perf_counter() - self.opened
        ctx.span.add_event("close", {"code": code, "reason": reason})
        ctx.latency = self.first_result if self.first_result is not None else seconds
        with pipeline._current(ctx):
            if error is not None:
                error = pipeline._failed(ctx, admitted, error, False)
            elif self.first_result is not None:
                pipeline._succeeded(ctx, admitted, False)
            else:
                pipeline._abandoned(ctx, admitted)
        usage_attributes(ctx)
        end_span(ctx.span, error)
        for observer in pipeline.stream_observers:
            for direction, count in self._messages.items():
                if count:
                    observer.on_stream_messages(ctx.spec, direction, count)
            observer.on_stream_end(ctx.spec, seconds, self.first_result)
        await pipeline._settle()

"""Each provider's HTTP client: a pooled ``httpx2`` client on the aiohttp transport that tells the
current call how long it waited for a connection."""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import Any

import aiohttp
import httpx2
from openai import DefaultAioHttpClient

# The aiohttp transport the OpenAI SDK ships for httpx2 (DefaultAioHttpClient's own), taken
# directly only to give it a connector of ours.
from openai._vendor.httpx_aiohttp import AiohttpTransport

from ..calls import CallContext
from ..telemetry import Telemetry

CURRENT_CALL: ContextVar[CallContext | None] = ContextVar("provider_call", default=None)
"""The provider call whose attempt runs in this task (set by the pipeline around each attempt)."""

HEALTH_CHECK_HEADROOM = 2
"""Connections each provider's pool keeps beyond ``P_MAX_CONCURRENCY``, for active health checks
(which take no bulkhead slot) and for a stream whose slot is freed just before its connection."""


class _TimedConnector(aiohttp.TCPConnector):
    """Adds the time the current call spends getting a connection (a free pooled one, or a new
    one) to its ``connect_wait``: gateway time before the request is written, not the provider's."""

    async def connect(self, req: aiohttp.ClientRequest, traces: list[Any], timeout: aiohttp.ClientTimeout,
                      ) -> aiohttp.connector.Connection:
        call = CURRENT_CALL.get()
        started = time.perf_counter()
        try:
            return await super().connect(req, traces, timeout)
        finally:
            if call is not None:
                call.connect_wait += time.perf_counter() - started


def make_http_client(telemetry: Telemetry, max_connections: int) -> httpx2.AsyncClient:
    """One provider's pooled ``httpx2`` client on the aiohttp transport (the fastest measured
    here), with at most ``max_connections`` connections and the OpenTelemetry HTTP client
    instrumentation attached to it."""
    limits = httpx2.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    transport = AiohttpTransport(limits=limits)

    def session() -> aiohttp.ClientSession:  # made on first use, inside the running event loop
        return aiohttp.ClientSession(connector=_TimedConnector(
            limit=max_connections, keepalive_timeout=limits.keepalive_expiry, ssl=transport.ssl_context))

    transport.client = session
    client: httpx2.AsyncClient = DefaultAioHttpClient(
        transport=transport,
        timeout=httpx2.Timeout(None),  # the pipeline owns timeouts
        follow_redirects=False,
    )
    telemetry.instrument_http_client(client)
    return client

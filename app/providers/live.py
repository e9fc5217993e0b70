"""Live (WebSocket) sessions with providers: the upgrade to the provider's socket, with the
provider key (never the caller's headers) and the trace context, on one aiohttp client session
per process."""

from __future__ import annotations

from collections.abc import Sequence

import aiohttp
from opentelemetry import propagate

from ..calls import ErrorType, GatewayError
from .service import ProviderService
from .upstream_errors import status_error

Params = Sequence[tuple[str, str]]


def socket_url(base_url: str) -> str:
    """A provider's base URL with the WebSocket scheme (``https`` becomes ``wss``)."""
    scheme, sep, rest = base_url.partition("://")
    return {"https": "wss", "http": "ws"}.get(scheme, scheme) + sep + rest


class LiveUpstreams:
    """The client side of every live session: one aiohttp session, opened on first use."""

    def __init__(self) -> None:
        self._client: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        if self._client is None:
            # No connection cap of aiohttp's own (100 by default): a socket is held for the whole
            # session, and each provider's bulkhead already bounds how many are open.
            self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None),
                                                 connector=aiohttp.TCPConnector(limit=0))
        return self._client

    async def connect(self, service: ProviderService, path: str, params: Params) -> aiohttp.ClientWebSocketResponse:
        """Upgrade to ``path`` under the provider's base URL; a refused upgrade or an unreachable
        provider is a :class:`GatewayError` of the same types as an HTTP call's."""
        headers = service.headers()
        propagate.inject(headers)
        try:
            return await self._session().ws_connect(socket_url(service.base_url) + path, params=list(params),
                                                    headers=headers, max_msg_size=0, autoping=True, compress=0)
        except aiohttp.WSServerHandshakeError as exc:
            raise status_error(service.provider, exc.status, b"", exc.headers or {}) from exc
        except aiohttp.ClientError as exc:
            raise GatewayError(ErrorType.CONNECTION, f"could not reach {service.provider}") from exc

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

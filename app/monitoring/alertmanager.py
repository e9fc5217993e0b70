"""Delivery of in-app alerts to Alertmanager's v2 API (``POST /api/v2/alerts``)."""

from __future__ import annotations

from collections.abc import Sequence

import httpx2

from ..config import redact_url
from .evaluator import Notification


class AlertmanagerError(Exception):
    """Alertmanager could not be reached or refused the alerts."""


class AlertmanagerClient:
    """Posts alerts to one Alertmanager; each post is bounded by ``timeout`` seconds."""

    def __init__(self, url: str, generator_url: str, timeout: float = 5.0) -> None:
        self.endpoint = url.rstrip("/") + "/api/v2/alerts"
        self._shown = redact_url(self.endpoint)
        """The endpoint as errors name it (they end up in logs): without a password."""
        self.generator_url = generator_url
        self.timeout = timeout
        self._client: httpx2.AsyncClient | None = None

    async def post(self, notifications: Sequence[Notification]) -> None:
        body = [n.payload(self.generator_url) for n in notifications]
        if self._client is None:  # created on first use, in the event loop that uses it
            self._client = httpx2.AsyncClient(timeout=self.timeout)
        try:
            response = await self._client.post(self.endpoint, json=body)
        except httpx2.HTTPError as exc:
            raise AlertmanagerError(f"{self._shown}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 300:
            raise AlertmanagerError(f"{self._shown}: HTTP {response.status_code}: {response.text[:200]}")

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

"""The admin-key guard of the operator routes: ``/health/configuration``, ``/_sim/faults``,
``/metrics`` (with ``METRICS_REQUIRE_AUTH``) and ``/status``.

With ``ADMIN_API_KEY`` set, these routes need ``Authorization: Bearer <admin key>`` (or HTTP Basic
with the key as the password, which browsers can send), compared in constant time. Without it they
are open in development and off (404, as if absent) in production, so that a production gateway
never exposes them by omission.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any, Final

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, NotFoundException
from litestar.handlers.base import BaseRouteHandler

from ..calls import request_spend
from ..config import Secret, Settings, get_settings

SIM_CONTROL_PATHS: Final = ("/_sim/faults", "/_sim/requests")
"""The simulator's control routes; its provider routes are the gateway's own upstream."""


def bearer_token(authorization: str) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, or ``""``."""
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def offered_key(authorization: str) -> str:
    """The key in a Bearer or Basic ``Authorization`` header (Basic: the password), or ``""``."""
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return bearer_token(authorization)
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ""
    return decoded.partition(":")[2]


def key_matches(token: str, keys: tuple[Secret, ...]) -> bool:
    """Whether ``token`` is one of ``keys``; every key is compared, each in constant time."""
    return matching_key(token, keys) is not None


def matching_key(token: str, keys: tuple[Secret, ...]) -> int | None:
    """The index of ``token`` among ``keys`` (``None``: none); every key is compared, each in constant time."""
    found: int | None = None
    for index, key in enumerate(keys):
        if hmac.compare_digest(token.encode(), key.get_secret_value().encode()) and token != "":
            found = index
    return found


def check_client(settings: Settings, token: str) -> bool:
    """Whether ``token`` is a client key (always, when ``GATEWAY_API_KEYS`` is unset); the current
    request's calls are then attributed to its name (:class:`~app.calls.RequestSpend`)."""
    keys = settings.gateway_api_keys
    if not keys:
        return True
    index = matching_key(token, keys)
    if index is None:
        return False
    request_spend().client = settings.client_names[index]
    return True


def settings_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Settings:
    """The app's settings (the standalone simulator has none of its own: the environment's)."""
    manager = connection.app.state.get("service_manager")
    if manager is None:
        return get_settings()
    settings: Settings = manager.settings
    return settings


def check_admin(settings: Settings, authorization: str) -> None:
    """Raise 401 without the admin key when one is set, 404 in production when none is."""
    if settings.admin_api_key is None:
        if settings.is_production:
            raise NotFoundException()
        return
    if not key_matches(offered_key(authorization), (settings.admin_api_key,)):
        raise NotAuthorizedException("this route needs the admin key: Authorization: Bearer <ADMIN_API_KEY>",
                                     headers={"WWW-Authenticate": 'Bearer realm="admin"'})


async def require_admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Litestar guard: the admin key (see the module docstring). The guards are ``async`` because
    Litestar runs a plain function guard in a worker thread."""
    check_admin(settings_of(connection), connection.headers.get("authorization", ""))


async def require_metrics_auth(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Litestar guard for ``/metrics``: the admin key when ``METRICS_REQUIRE_AUTH`` is set."""
    if settings_of(connection).metrics_require_auth:
        await require_admin(connection, handler)


async def require_admin_on_sim_control(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler,
) -> None:
    """Litestar guard for the mounted simulator: the admin key on its control routes only."""
    if connection.scope["path"].startswith(SIM_CONTROL_PATHS):
        await require_admin(connection, handler)

"""The admin key in front of the status page in production, as for ``/health/configuration``.

A script or ``curl`` sends ``Authorization: Bearer <admin key>``; a browser cannot, so the page
also accepts HTTP Basic with the admin key as the password (any user name) and asks for it with
``WWW-Authenticate: Basic``: the browser prompts once and sends the same credentials with the
page's refresh requests.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

CHALLENGE = 'Basic realm="gateway admin", charset="UTF-8"'


def offered_key(authorization: str) -> str | None:
    """The key in a Bearer or Basic ``Authorization`` header (the password of Basic)."""
    scheme, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer":
        return credentials or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


def admin_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """In production with ``ADMIN_API_KEY`` set, only callers who present that key pass."""
    settings = connection.app.state.service_manager.settings
    key = settings.admin_api_key
    if not settings.is_production or key is None:
        return
    offered = offered_key(connection.headers.get("authorization", ""))
    if offered is None or not hmac.compare_digest(offered.encode(), key.get_secret_value().encode()):
        raise NotAuthorizedException("the status page needs the admin key: 'Authorization: Bearer <key>' "
                                     "or HTTP Basic with the key as the password",
                                     headers={"WWW-Authenticate": CHALLENGE})

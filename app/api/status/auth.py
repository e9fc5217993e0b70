"""The admin key in front of the status page: the shared operator-route policy of
:mod:`app.resilience.auth` (``require_admin``), reachable from a browser.

A script or ``curl`` sends ``Authorization: Bearer <admin key>`` as for ``/health/configuration``.
A browser cannot, so the page also takes HTTP Basic with the admin key as the password (any user
name) and asks for it with ``WWW-Authenticate: Basic``: the browser prompts once and sends the
same credentials with the page's refresh requests.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

from ...resilience.auth import check_admin, settings_of

CHALLENGE = 'Basic realm="gateway admin", charset="UTF-8"'


async def admin_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """``require_admin`` (which takes HTTP Basic too); a refusal asks the browser for the key."""
    try:
        check_admin(settings_of(connection), connection.headers.get("authorization", ""))
    except NotAuthorizedException as refused:
        raise NotAuthorizedException(
            "the status page needs the admin key: 'Authorization: Bearer <key>', or HTTP Basic with "
            "the key as the password", headers={"WWW-Authenticate": CHALLENGE}) from refused

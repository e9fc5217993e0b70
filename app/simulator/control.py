"""Control routes: the fault table (documented in the OpenAPI schema) and the log of received requests."""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Annotated, Any

from litestar import Request, Response, Router, delete, get, put
from litestar.di import NamedDependency
from litestar.exceptions import ClientException, ValidationException
from litestar.params import FromQuery, JSONBody, QueryParameter

from app.simulator.faults import FaultSpec, ProviderName, UnknownOperation, check_operation
from app.simulator.state import RecordedRequest, SimulatorState

PROBLEM_JSON = "application/problem+json"
_NAMED_FIELD = re.compile(r"field `([^`]+)`")
"""msgspec names unknown and missing fields only in its message ("Object contains unknown field `x`")."""


def _invalid(field: str, message: str) -> ValidationException:
    return ValidationException(message, extra=[{"key": field, "message": message}])


def _validation_problem(_: Request[Any, Any, Any], exc: ClientException) -> Response[dict[str, Any]]:
    """Client errors (bad JSON, wrong types, out-of-range values, unknown fields or operations) as problem details
    naming the bad field, with the gateway's ``error_type``."""
    problems = exc.extra if isinstance(exc.extra, list) else []
    first = problems[0] if problems and isinstance(problems[0], dict) else {}
    message = str(first.get("message") or exc.detail)
    named = _NAMED_FIELD.search(message)
    field = named.group(1) if named else first.get("key")
    detail = f"{field}: {message}" if field else message
    status = exc.status_code
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "error_type": "invalid_input",
    }
    if field:
        body["field"] = field
    return Response(body, status_code=status, media_type=PROBLEM_JSON)


@put("/faults", summary="Set a fault", tags=["simulator"])
async def put_fault(data: JSONBody[FaultSpec], sim_state: NamedDependency[SimulatorState]) -> list[FaultSpec]:
    """Set the fault for a provider, or for one of its operations; returns the whole fault table.

    Setting a fault replaces the previous one for the same provider and operation and restarts its request
    counters.
    """
    try:
        sim_state.faults.put(data)
    except UnknownOperation as exc:
        raise _invalid("operation", str(exc)) from None
    return sim_state.faults.rows()


@get("/faults", summary="List faults", tags=["simulator"])
async def get_faults(sim_state: NamedDependency[SimulatorState]) -> list[FaultSpec]:
    """The fault table."""
    return sim_state.faults.rows()


@delete("/faults", status_code=200, summary="Clear faults", tags=["simulator"])
async def clear_faults(
    sim_state: NamedDependency[SimulatorState],
    provider: Annotated[
        ProviderName | None, QueryParameter(description="Clear only this provider's faults.")
    ] = None,
    operation: Annotated[
        str | None, QueryParameter(description="With provider: clear only this operation's fault.")
    ] = None,
) -> list[FaultSpec]:
    """Clear faults (all, one provider's, or one operation's); returns what is left of the table."""
    if operation is not None:
        if provider is None:
            raise _invalid("operation", "clearing one operation's fault needs provider as well")
        try:
            check_operation(provider, operation)
        except UnknownOperation as exc:
            raise _invalid("operation", str(exc)) from None
    sim_state.faults.clear(provider, operation)
    return sim_state.faults.rows()


@get("/requests", include_in_schema=False)
async def list_requests(
    sim_state: NamedDependency[SimulatorState], provider: FromQuery[str | None] = None
) -> list[RecordedRequest]:
    """Provider requests received, oldest first, optionally for one provider."""
    return sim_state.requests.entries(provider)


@delete("/requests", status_code=200, include_in_schema=False)
async def clear_requests(sim_state: NamedDependency[SimulatorState]) -> list[RecordedRequest]:
    sim_state.requests.clear()
    return []


def control_router() -> Router:
    return Router(
        "/",
        route_handlers=[put_fault, get_faults, clear_faults, list_requests, clear_requests],
        # Bad requests only: a 401 or 404 (the gateway's guard) or 413 is answered as everywhere else.
        exception_handlers={400: _validation_problem},
    )

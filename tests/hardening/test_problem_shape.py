"""Every refusal the gateway sends is ``application/problem+json`` with an ``error_type``, the
framework's own included (issue 23): an unknown path (under ``/schema`` and ``/_sim`` too), a
wrong method, a body that is not JSON, a media type a route does not take; and the simulator's
fault body is validated by type."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.gateway import Gateway, running_gateway

pytestmark = pytest.mark.stack

NOT_JSON = {"content": b'{"input": "hello",', "headers": {"content-type": "application/json"}}
TOO_LARGE = {"content": b'{"input": "' + b"a" * (5 * 1024 * 1024) + b'"}',
             "headers": {"content-type": "application/json"}}
"""Over the 4 MiB a JSON body may have."""
REFUSALS: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("GET", "/no/such/path", {}, 404, "not_found"),
    ("GET", "/schema/no-such-page", {}, 404, "not_found"),
    ("GET", "/_sim/no/such/path", {}, 404, "not_found"),
    ("GET", "/_sim/openai/v1/no-such-route", {}, 404, "not_found"),
    ("DELETE", "/v1/translate", {}, 405, "method_not_allowed"),
    ("GET", "/v1/chat/completions", {}, 405, "method_not_allowed"),
    ("POST", "/_sim/faults", {}, 405, "method_not_allowed"),
    ("POST", "/health/", {}, 405, "method_not_allowed"),
    ("POST", "/v1/translate", NOT_JSON, 400, "invalid_input"),
    ("PUT", "/_sim/faults", NOT_JSON, 400, "invalid_input"),
    ("POST", "/v1/translate", TOO_LARGE, 413, "invalid_input"),
    ("PUT", "/_sim/faults", TOO_LARGE, 413, "invalid_input"),
    ("POST", "/v1/embeddings", {"content": b"hello", "headers": {"content-type": "text/plain"}}, 415, "invalid_input"),
    ("PUT", "/_sim/faults", {"json": {"provider": "sarvam", "operation": None}}, 400, "invalid_input"),
    ("PUT", "/_sim/faults", {"json": {"provider": "sarvam", "error_rate": True}}, 400, "invalid_input"),
    ("PUT", "/_sim/faults", {"json": {"provider": "sarvam", "hang": "yes"}}, 400, "invalid_input"),
    ("PUT", "/_sim/faults", {"json": {"provider": "sarvam", "operation": "sing"}}, 400, "invalid_input"),
    ("PUT", "/_sim/faults", {"json": ["sarvam"]}, 400, "invalid_input"),
]


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    with running_gateway() as gateway:
        yield gateway


@pytest.mark.parametrize(("method", "path", "request_args", "status", "error_type"), REFUSALS,
                         ids=[f"{r[0]} {r[1]} {r[3]}" for r in REFUSALS])
def test_every_refusal_is_a_problem_with_an_error_type(
    gw: Gateway, method: str, path: str, request_args: dict[str, Any], status: int, error_type: str,
) -> None:
    response = gw.client.request(method, path, **request_args)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["status"], body["error_type"]) == (status, error_type)
    assert body["title"] and body["detail"] and body["type"]


def test_a_fault_for_the_whole_provider_leaves_operation_out(gw: Gateway) -> None:
    table = gw.client.put("/_sim/faults", json={"provider": "openai", "error_rate": 1.0, "status_code": 503})
    assert table.status_code == 200, table.text
    assert [row for row in table.json() if row["provider"] == "openai"] == [{
        "provider": "openai", "error_rate": 1.0, "status_code": 503, "retry_after": 1, "latency_ms": 0.0,
        "hang": False, "malformed": False, "truncate": False, "chunk_delay_ms": 0.0}]
    refused = gw.client.put("/_sim/faults", json={"provider": "openai", "operation": None})
    assert "operation" in refused.text and refused.status_code == 400
    assert httpx.codes.is_success(gw.client.delete("/_sim/faults").status_code)


def test_operator_routes_refuse_without_the_admin_key_as_unauthorized() -> None:
    with running_gateway({"ADMIN_API_KEY": "admin-key-for-this-test"}) as gw:
        for method, path in (("GET", "/_sim/faults"), ("PUT", "/_sim/faults"), ("GET", "/health/configuration")):
            response = httpx.request(method, gw.url + path, json={"provider": "sarvam"})
            assert response.status_code == 401, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["error_type"] == "unauthorized"

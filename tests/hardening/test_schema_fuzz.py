"""Schemathesis against the gateway's own OpenAPI schema, on a live gateway: whatever it is sent,
no 5xx but the documented upstream 502/503/504, and every answer matches its documented schema.

The operations are driven with Hypothesis directly (schemathesis' lazy pytest loader does not
run under pytest 9): positive and negative data, a bounded number of examples per operation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import content_type_conformance, response_schema_conformance
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.schemas import APIOperation

from tests.gateway import running_gateway

UPSTREAM_STATUSES = (502, 503, 504)
MAX_EXAMPLES = 25


def barrage(operation: APIOperation[Any, Any, Any, Any], send: Callable[[Case[Any]], None]) -> None:
    """``send`` each of a bounded, reproducible set of valid and invalid requests to ``operation``."""
    strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=strategy)
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def run(case: Case[Any]) -> None:
        send(case)

    run()


def fuzz(operation: APIOperation[Any, Any, Any, Any], base_url: str, problems: list[str]) -> None:
    def send(case: Case[Any]) -> None:
        response = case.call(base_url=base_url, timeout=30)
        where = f"{case.method} {case.formatted_path}"
        if response.status_code >= 500 and response.status_code not in UPSTREAM_STATUSES:
            problems.append(f"{where} answered {response.status_code}: {response.text[:300]}")
        try:
            case.validate_response(response, checks=[response_schema_conformance, content_type_conformance])
        except (AssertionError, FailureGroup) as failure:
            problems.append(f"{where} ({response.status_code}): {str(failure)[:600]}")

    barrage(operation, send)


def test_the_gateway_honours_its_own_schema() -> None:
    with running_gateway({"SARVAM_TIMEOUT": "5", "DEEPGRAM_TIMEOUT": "5", "OPENAI_TIMEOUT": "5"}) as gw:
        schema = schemathesis.openapi.from_url(gw.url + "/schema/openapi.json").exclude(path_regex="^/_sim")
        loaded = list(schema.get_all_operations())
        operations = [result.ok() for result in loaded if isinstance(result, Ok)]
        assert len(operations) == len(loaded), [result.err() for result in loaded if not isinstance(result, Ok)]
        assert len(operations) >= 15, [op.label for op in operations]
        problems: list[str] = []
        for operation in operations:
            fuzz(operation, gw.url, problems)
    assert problems == [], "\n".join(dict.fromkeys(problems))


pytestmark = pytest.mark.timeout(180)

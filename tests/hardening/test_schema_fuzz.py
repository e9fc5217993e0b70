"""Schemathesis against the gateway's own OpenAPI document, on a live gateway with its simulator
mounted: every documented operation, the simulator's fault control included, gets valid and
invalid requests, and every answer must be no 5xx, a documented status, a documented content type
and a body matching its documented schema; invalid data must be refused with a 4xx.

The run is bounded by time, not by a count: ``FUZZ_SECONDS`` (default 90, the test command's
budget) is spent in rounds, each giving every operation :data:`PER_ROUND` new examples (a new
seed per round), until the budget is spent. A longer hunt is the same test with a larger budget:
``FUZZ_SECONDS=1800 python -m pytest tests/hardening/test_schema_fuzz.py``.

The operations are driven with Hypothesis directly (schemathesis' lazy pytest loader does not run
under pytest 9). A fault the fuzzer sets through ``PUT /_sim/faults`` is cleared at once, so that
a provider's injected errors never count as the gateway's.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.schemas import APIOperation

from tests.gateway import Gateway, running_gateway

BUDGET = float(os.environ.get("FUZZ_SECONDS", "90"))
"""Seconds of fuzzing (the gateway's start and the report are extra)."""
PER_ROUND = 8
"""Examples per operation and round."""
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection]
REFUSALS = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]
"""What invalid data may be answered: schemathesis' list, plus 413 (a form with too many parts or a
field over its size is refused whole), less its 5xx (never acceptable here)."""
OPERATIONS = 20
"""Operations the OpenAPI document has: a new route must be fuzzed too, and counted here."""

Operation = APIOperation[Any, Any, Any, Any]


def barrage(operation: Operation, round_seed: int, send: Callable[[Case[Any]], None]) -> None:
    """``send`` :data:`PER_ROUND` valid and invalid requests to ``operation``, reproducible from
    ``round_seed``."""
    strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @seed(round_seed)
    @given(case=strategy)
    @settings(max_examples=PER_ROUND, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    def run(case: Case[Any]) -> None:
        send(case)

    run()


class Fuzz:
    """Sends each case to the gateway and keeps every failed check, with the request to replay it."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.problems: dict[str, str] = {}
        self.sent = 0
        self.statuses: dict[int, int] = {}

    def send(self, case: Case[Any]) -> None:
        response = case.call(base_url=self.gw.url, timeout=30)
        self.sent += 1
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        if case.operation.path.startswith("/_sim/"):
            self.gw.clear_faults()
        try:
            case.validate_response(response, checks=CHECKS)
        except (AssertionError, FailureGroup) as failure:
            found = failure.exceptions if isinstance(failure, FailureGroup) else [failure]
            titles = ", ".join(sorted({getattr(f, "title", type(f).__name__) for f in found}))
            self.problems.setdefault(f"{case.method} {case.operation.path} -> {response.status_code}: {titles}",
                                     f"{str(failure)[:800]}\n  replay: {case.as_curl_command()}")


@pytest.mark.timeout(BUDGET + 120)
def test_the_gateway_honours_its_own_openapi_document() -> None:
    env = {"SARVAM_TIMEOUT": "10", "DEEPGRAM_TIMEOUT": "10", "OPENAI_TIMEOUT": "10"}
    with running_gateway(env) as gw:
        config = SchemathesisConfig.from_dict({"checks": {"negative_data_rejection": {"expected-statuses": REFUSALS}}})
        schema = schemathesis.openapi.from_url(gw.url + "/schema/openapi.json", config=config)
        loaded = list(schema.get_all_operations())
        operations: list[Operation] = [result.ok() for result in loaded if isinstance(result, Ok)]
        assert len(operations) == len(loaded), [result.err() for result in loaded if not isinstance(result, Ok)]
        assert len(operations) == OPERATIONS, sorted(op.label for op in operations)
        fuzz = Fuzz(gw)
        started, rounds = time.monotonic(), 0
        while time.monotonic() - started < BUDGET:
            for operation in operations:
                if time.monotonic() - started < BUDGET:
                    barrage(operation, rounds, fuzz.send)
            rounds += 1
    print(f"\nfuzz: {fuzz.sent} requests in {rounds} rounds over {len(operations)} operations, "
          f"{time.monotonic() - started:.0f} s; statuses {dict(sorted(fuzz.statuses.items()))}")
    assert fuzz.problems == {}, "\n\n".join(f"{key}\n{detail}" for key, detail in fuzz.problems.items())
    assert fuzz.sent >= OPERATIONS * PER_ROUND and 200 in fuzz.statuses and 400 in fuzz.statuses

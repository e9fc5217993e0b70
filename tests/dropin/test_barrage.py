"""The bad-input barrage of ``/v1`` (the schema fuzzer's valid and invalid requests) replayed on the
drop-in routes that take the same kind of request: not a single 5xx, and every refusal in the
provider's own error shape rather than ours."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis import Case
from schemathesis.core.result import Ok

from tests.gateway import running_gateway
from tests.hardening.test_schema_fuzz import barrage

REPLAYED = {
    "/v1/translate": ("/sarvam/translate",),
    "/v1/tts": ("/sarvam/text-to-speech", "/sarvam/text-to-speech/stream", "/deepgram/v1/speak"),
    "/v1/stt": ("/sarvam/speech-to-text", "/deepgram/v1/listen"),
    "/v1/chat/completions": ("/openai/v1/chat/completions",),
    "/v1/embeddings": ("/openai/v1/embeddings",),
}
ROUNDS = 3
"""Rounds of the fuzz test's barrage per operation (8 examples each)."""
ENV = {name: value for p in ("SARVAM", "DEEPGRAM", "OPENAI")
       for name, value in ((f"{p}_TIMEOUT", "5"), (f"{p}_RATE_LIMIT", "100000"))}


def test_the_v1_barrage_replayed_on_the_drop_in_routes_gets_no_5xx() -> None:
    problems: list[str] = []
    statuses: Counter[int] = Counter()
    with running_gateway(ENV) as gw, requests.Session() as session:
        schema = schemathesis.openapi.from_url(gw.url + "/schema/openapi.json")
        operations = {op.path: op for op in (r.ok() for r in schema.get_all_operations() if isinstance(r, Ok))
                      if op.path in REPLAYED}
        assert set(operations) == set(REPLAYED)
        for path, operation in operations.items():

            def send(case: Case[Any], path: str = path) -> None:
                for target in REPLAYED[path]:
                    request = case.as_transport_kwargs(base_url=gw.url)  # afresh: files are read once
                    request["url"] = request["url"].replace(path, target, 1)
                    response = session.request(**request, timeout=30)
                    statuses[response.status_code] += 1
                    where = f"{target} ({case.id})"
                    if response.status_code >= 500:
                        problems.append(f"{where} answered {response.status_code}: {response.text[:300]}")
                    elif response.status_code >= 400 and "problem" in response.headers.get("content-type", ""):
                        problems.append(f"{where} refused in our shape, not the provider's: {response.text[:300]}")

            for round_seed in range(ROUNDS):
                barrage(operation, round_seed, send)
    assert problems == [], "\n".join(dict.fromkeys(problems))
    # The barrage reached the providers and was refused both by the gateway and by them.
    assert statuses[200] >= 10 and statuses[422] >= 10 and sum(statuses.values()) >= 100, statuses


pytestmark = pytest.mark.timeout(240)

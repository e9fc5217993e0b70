"""Fault injection over HTTP: deterministic error rates, provider error bodies, latency, hangs, malformed and
truncated bodies, overrides and clearing, validation of the fault table, and the request log."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from litestar import Litestar

from app.simulator import create_simulator_app, create_simulator_router
from app.simulator.audio import synth_wav
from app.simulator.state import REQUEST_LOG_SIZE, RequestLog
from tests.simulator.helpers import DEEPGRAM, OPENAI, SARVAM, set_fault
from tests.support import live_server, wait_until

Call = Callable[[httpx.Client], httpx.Response]

TRANSLATE_BODY = {"input": "Hello", "source_language_code": "en-IN", "target_language_code": "hi-IN"}
CHAT_BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}


def translate(client: httpx.Client, **headers: str) -> httpx.Response:
    return client.post("/_sim/sarvam/translate", json=TRANSLATE_BODY, headers={**SARVAM, **headers})


def sarvam_tts(client: httpx.Client) -> httpx.Response:
    return client.post(
        "/_sim/sarvam/text-to-speech", json={"text": "Hi", "language_code": "hi-IN"}, headers=SARVAM
    )


def sarvam_stt(client: httpx.Client) -> httpx.Response:
    files = {"file": ("a.wav", synth_wav(0.5, 8000), "audio/wav")}
    return client.post("/_sim/sarvam/speech-to-text", files=files, headers=SARVAM)


def deepgram_listen(client: httpx.Client) -> httpx.Response:
    headers = {**DEEPGRAM, "content-type": "audio/wav"}
    return client.post("/_sim/deepgram/v1/listen", content=synth_wav(0.5, 8000), headers=headers)


def deepgram_speak(client: httpx.Client) -> httpx.Response:
    return client.post("/_sim/deepgram/v1/speak", json={"text": "Hi"}, headers=DEEPGRAM)


def deepgram_projects(client: httpx.Client) -> httpx.Response:
    return client.get("/_sim/deepgram/v1/projects", headers=DEEPGRAM)


def openai_chat(client: httpx.Client) -> httpx.Response:
    return client.post("/_sim/openai/v1/chat/completions", json=CHAT_BODY, headers=OPENAI)


def openai_embeddings(client: httpx.Client) -> httpx.Response:
    body = {"model": "text-embedding-3-small", "input": "Hi"}
    return client.post("/_sim/openai/v1/embeddings", json=body, headers=OPENAI)


def openai_models(client: httpx.Client) -> httpx.Response:
    return client.get("/_sim/openai/v1/models", headers=OPENAI)


OPERATIONS: list[tuple[str, str, Call]] = [
    ("sarvam", "translate", translate),
    ("sarvam", "tts", sarvam_tts),
    ("sarvam", "stt", sarvam_stt),
    ("deepgram", "stt", deepgram_listen),
    ("deepgram", "tts", deepgram_speak),
    ("deepgram", "health", deepgram_projects),
    ("openai", "chat", openai_chat),
    ("openai", "embeddings", openai_embeddings),
    ("openai", "health", openai_models),
]
OPERATION_IDS = [f"{provider}.{operation}" for provider, operation, _ in OPERATIONS]


def error_code(provider: str, response: httpx.Response) -> str | None:
    """The provider's machine-readable error code from its own error shape."""
    body = response.json()
    if provider == "sarvam":
        assert set(body["error"]) == {"message", "code", "request_id"}
        code: str | None = body["error"]["code"]
    elif provider == "deepgram":
        assert set(body) == {"err_code", "err_msg", "request_id"}
        code = body["err_code"]
    else:
        assert set(body["error"]) == {"message", "type", "param", "code"}
        code = body["error"]["code"] or body["error"]["type"]
    return code


@pytest.mark.parametrize(("provider", "operation", "call"), OPERATIONS, ids=OPERATION_IDS)
def test_error_rate_one_half_fails_exactly_every_second_request(
    client: httpx.Client, provider: str, operation: str, call: Call
) -> None:
    set_fault(client, provider=provider, operation=operation, error_rate=0.5)
    statuses = [call(client).status_code for _ in range(10)]
    assert statuses == [200, 500] * 5


def test_error_rate_five_percent_fails_exactly_five_in_a_hundred(client: httpx.Client) -> None:
    set_fault(client, provider="openai", error_rate=0.05)
    statuses = [openai_models(client).status_code for _ in range(100)]
    assert [index + 1 for index, status in enumerate(statuses) if status != 200] == [20, 40, 60, 80, 100]


def test_setting_a_fault_restarts_its_counter(client: httpx.Client) -> None:
    set_fault(client, provider="openai", error_rate=0.5)
    assert openai_models(client).status_code == 200
    set_fault(client, provider="openai", error_rate=0.5)
    assert [openai_models(client).status_code for _ in range(2)] == [200, 500]


EXPECTED_CODES = {
    "sarvam": {400: "invalid_request_error", 401: "invalid_api_key_error", 403: "invalid_api_key_error",
               422: "unprocessable_entity_error", 429: "rate_limit_exceeded_error", 500: "internal_server_error",
               503: "rate_limit_exceeded_error"},
    "deepgram": {400: "Bad Request", 401: "INVALID_AUTH", 403: "INSUFFICIENT_PERMISSIONS", 422: "Bad Request",
                 429: "TOO_MANY_REQUESTS", 500: "INTERNAL_SERVER_ERROR", 503: "SERVICE_UNAVAILABLE"},
    "openai": {400: "invalid_request_error", 401: "invalid_api_key", 403: "invalid_request_error",
               422: "invalid_request_error", 429: "rate_limit_exceeded", 500: "server_error", 503: "server_error"},
}  # fmt: skip


@pytest.mark.parametrize("provider", ["sarvam", "deepgram", "openai"])
@pytest.mark.parametrize("status", [400, 401, 403, 422, 429, 500, 503])
def test_injected_errors_use_the_provider_error_shape(
    client: httpx.Client, provider: str, status: int
) -> None:
    call = {"sarvam": translate, "deepgram": deepgram_projects, "openai": openai_models}[provider]
    set_fault(client, provider=provider, error_rate=1, status_code=status, retry_after=7)
    response = call(client)
    assert response.status_code == status
    assert error_code(provider, response) == EXPECTED_CODES[provider][status]
    assert response.headers.get("retry-after") == ("7" if status == 429 else None)


def test_retry_after_defaults_to_one_second(client: httpx.Client) -> None:
    set_fault(client, provider="sarvam", operation="tts", error_rate=1, status_code=429)
    response = sarvam_tts(client)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"


def test_latency_is_added_before_answering(client: httpx.Client) -> None:
    set_fault(client, provider="openai", operation="chat", latency_ms=300)
    started = time.monotonic()
    assert openai_chat(client).status_code == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    assert openai_embeddings(client).status_code == 200  # another operation is not slowed
    assert time.monotonic() - started < 0.3


def test_latency_then_injected_error(client: httpx.Client) -> None:
    set_fault(client, provider="deepgram", latency_ms=200, error_rate=1, status_code=503)
    started = time.monotonic()
    assert deepgram_projects(client).status_code == 503
    assert time.monotonic() - started >= 0.2


def test_hang_times_the_client_out_while_the_server_answers_others(client: httpx.Client) -> None:
    set_fault(client, provider="sarvam", operation="translate", hang=True)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        client.post("/_sim/sarvam/translate", json=TRANSLATE_BODY, headers=SARVAM, timeout=0.5)
    assert 0.5 <= time.monotonic() - started < 2
    assert sarvam_tts(client).status_code == 200
    assert openai_models(client).status_code == 200
    assert client.delete("/_sim/faults").json() == []
    assert translate(client).status_code == 200


def test_clearing_a_hang_releases_waiting_requests(client: httpx.Client) -> None:
    set_fault(client, provider="openai", operation="embeddings", hang=True)
    results: list[int] = []
    waiter = threading.Thread(target=lambda: results.append(openai_embeddings(client).status_code))
    waiter.start()
    wait_for_request(client, "openai", "embeddings")
    time.sleep(0.2)
    assert results == []
    client.delete("/_sim/faults", params={"provider": "openai", "operation": "embeddings"})
    waiter.join(timeout=5)
    assert results == [200]


def wait_for_request(client: httpx.Client, provider: str, operation: str) -> None:
    def arrived() -> bool:
        recorded = client.get("/_sim/requests", params={"provider": provider}).json()
        return any(entry["operation"] == operation for entry in recorded)

    wait_until(arrived, 5, f"a {provider}.{operation} request")


def test_a_hanging_request_does_not_hold_up_server_shutdown() -> None:
    with (
        live_server(create_simulator_app()) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        set_fault(client, provider="openai", hang=True)
        outcome: list[object] = []

        def call() -> None:
            try:
                outcome.append(openai_chat(client).status_code)
            except httpx.HTTPError as exc:
                outcome.append(exc)

        waiter = threading.Thread(target=call)
        waiter.start()
        wait_for_request(client, "openai", "chat")
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 3
        waiter.join(timeout=5)
        assert outcome == [503]


@pytest.mark.parametrize(
    ("provider", "operation", "call"),
    [op for op in OPERATIONS if op[1] != "stt" or op[0] == "deepgram"] + [("sarvam", "stt", sarvam_stt)],
    ids=OPERATION_IDS,
)
def test_malformed_answers_200_with_a_body_that_is_not_valid(
    client: httpx.Client, provider: str, operation: str, call: Call
) -> None:
    set_fault(client, provider=provider, operation=operation, malformed=True)
    response = call(client)
    assert response.status_code == 200
    if response.headers["content-type"] == "audio/wav":
        assert not response.content.startswith(b"RIFF")
        assert response.content
    else:
        with pytest.raises(json.JSONDecodeError):
            response.json()


def test_malformed_sarvam_stream_is_not_a_wav(client: httpx.Client) -> None:
    set_fault(client, provider="sarvam", operation="tts", malformed=True)
    body = {"text": "Hello", "language_code": "hi-IN"}
    response = client.post("/_sim/sarvam/text-to-speech/stream", json=body, headers=SARVAM)
    assert response.status_code == 200 and not response.content.startswith(b"RIFF")


def test_malformed_chat_stream_has_events_that_are_not_json(client: httpx.Client) -> None:
    set_fault(client, provider="openai", operation="chat", malformed=True)
    response = client.post(
        "/_sim/openai/v1/chat/completions", json={**CHAT_BODY, "stream": True}, headers=OPENAI
    )
    assert response.status_code == 200
    first_event = response.text.split("\n\n")[0].removeprefix("data: ")
    with pytest.raises(json.JSONDecodeError):
        json.loads(first_event)


def read_until_dropped(response: httpx.Response) -> list[bytes]:
    chunks: list[bytes] = []
    with pytest.raises(httpx.RemoteProtocolError):
        chunks.extend(response.iter_raw())
    return chunks


@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [
        (
            "/_sim/sarvam/text-to-speech/stream",
            {"text": "Hello there, friend.", "language_code": "hi-IN"},
            SARVAM,
        ),
        ("/_sim/deepgram/v1/speak?sample_rate=16000", {"text": "Hello there, friend."}, DEEPGRAM),
    ],
    ids=["sarvam", "deepgram"],
)
def test_truncate_drops_an_audio_stream_after_the_first_chunk(
    client: httpx.Client, path: str, body: dict[str, Any], headers: dict[str, str]
) -> None:
    provider = "sarvam" if "sarvam" in path else "deepgram"
    set_fault(client, provider=provider, operation="tts", truncate=True)
    with client.stream("POST", path, json=body, headers=headers) as response:
        assert response.status_code == 200
        received = b"".join(read_until_dropped(response))
    assert received.startswith(b"RIFF")
    rate = 16000 if provider == "deepgram" else 22050
    assert len(received) == 44 + int(rate * 0.25) * 2  # the header and the first quarter second only


def test_truncate_drops_the_chat_stream_before_done(client: httpx.Client) -> None:
    set_fault(client, provider="openai", operation="chat", truncate=True)
    with client.stream(
        "POST", "/_sim/openai/v1/chat/completions", json={**CHAT_BODY, "stream": True}, headers=OPENAI
    ) as response:
        text = b"".join(read_until_dropped(response)).decode()
    assert "[DONE]" not in text
    assert json.loads(text.removeprefix("data: "))["choices"][0]["delta"]["role"] == "assistant"


def test_truncate_leaves_plain_json_responses_alone(client: httpx.Client) -> None:
    set_fault(client, provider="openai", truncate=True)
    assert openai_chat(client).json()["object"] == "chat.completion"


def test_chunk_delay_paces_streams(client: httpx.Client) -> None:
    set_fault(client, provider="deepgram", operation="tts", chunk_delay_ms=100)
    arrivals: list[float] = []
    started = time.monotonic()
    with client.stream(
        "POST", "/_sim/deepgram/v1/speak", json={"text": "x" * 17}, headers=DEEPGRAM
    ) as response:
        for _ in response.iter_raw():
            arrivals.append(time.monotonic() - started)
    assert len(arrivals) == 5  # 1.02 s of audio in quarter-second chunks
    # Four pauses of 100 ms lie between the request and the last chunk. (Measured between the first and the last
    # arrival, a first chunk delivered late by a busy loop once made the span 392 ms.)
    assert arrivals[-1] >= 0.4


def test_an_operation_fault_overrides_the_provider_fault(client: httpx.Client) -> None:
    set_fault(client, provider="openai", error_rate=1, status_code=500)
    table = set_fault(client, provider="openai", operation="chat", error_rate=0)
    assert [(row["provider"], row.get("operation")) for row in table] == [("openai", None), ("openai", "chat")]
    assert openai_chat(client).status_code == 200
    assert openai_embeddings(client).status_code == 500
    assert openai_models(client).status_code == 500  # provider-wide faults reach the health-check route too
    assert translate(client).status_code == 200  # other providers are untouched


def test_the_fault_table_round_trips_with_defaults(client: httpx.Client) -> None:
    table = set_fault(client, provider="deepgram", operation="stt", error_rate=0.25, status_code=429)
    expected = {
        "provider": "deepgram", "operation": "stt", "error_rate": 0.25, "status_code": 429, "retry_after": 1,
        "latency_ms": 0.0, "hang": False, "malformed": False, "truncate": False, "chunk_delay_ms": 0.0,
    }  # fmt: skip
    assert table == [expected]
    assert client.get("/_sim/faults").json() == [expected]


def test_clear_one_provider_or_everything(client: httpx.Client) -> None:
    set_fault(client, provider="openai", error_rate=1)
    set_fault(client, provider="sarvam", operation="translate", error_rate=1)
    set_fault(client, provider="sarvam", operation="tts", error_rate=1)
    response = client.delete("/_sim/faults", params={"provider": "sarvam", "operation": "tts"})
    assert response.status_code == 200
    assert [(row["provider"], row.get("operation")) for row in response.json()] == [
        ("openai", None),
        ("sarvam", "translate"),
    ]
    remaining = client.delete("/_sim/faults", params={"provider": "sarvam"}).json()
    assert [row["provider"] for row in remaining] == ["openai"]
    assert translate(client).status_code == 200
    assert openai_chat(client).status_code == 500
    assert client.delete("/_sim/faults").json() == []
    assert openai_chat(client).status_code == 200


@pytest.mark.parametrize(
    ("fault", "field"),
    [
        ({"provider": "azure"}, "provider"),
        ({"operation": "chat"}, "provider"),
        ({"provider": "openai", "operation": "tts"}, "operation"),
        ({"provider": "sarvam", "operation": "health"}, "operation"),
        ({"provider": "openai", "error_rate": 1.5}, "error_rate"),
        ({"provider": "openai", "error_rate": -0.1}, "error_rate"),
        ({"provider": "openai", "status_code": 200}, "status_code"),
        ({"provider": "openai", "status_code": 600}, "status_code"),
        ({"provider": "openai", "latency_ms": -1}, "latency_ms"),
        ({"provider": "openai", "chunk_delay_ms": 10**9}, "chunk_delay_ms"),
        ({"provider": "openai", "hang": "yes"}, "hang"),
        ({"provider": "openai", "latency": 100}, "latency"),
    ],
)
def test_invalid_faults_are_problem_details_naming_the_field(
    client: httpx.Client, fault: dict[str, Any], field: str
) -> None:
    response = client.put("/_sim/faults", json=fault)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 400 and problem["title"] and problem["type"]
    assert problem["field"] == field
    assert field in problem["detail"]
    assert client.get("/_sim/faults").json() == []


def test_a_fault_body_that_is_not_json_is_a_problem(client: httpx.Client) -> None:
    response = client.put("/_sim/faults", content=b"{", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"provider": "azure"}, "provider"),
        ({"operation": "chat"}, "operation"),
        ({"provider": "openai", "operation": "x"}, "operation"),
    ],
)
def test_invalid_clears_are_problem_details(client: httpx.Client, params: dict[str, str], field: str) -> None:
    response = client.delete("/_sim/faults", params=params)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == field


def test_requests_are_recorded_with_traceparent_and_without_keys(client: httpx.Client) -> None:
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    client.post(
        "/_sim/sarvam/translate",
        json=TRANSLATE_BODY,
        headers={"api-subscription-key": "secret-sarvam", "traceparent": traceparent},
    )
    deepgram_projects(client)
    openai_chat(client)
    client.post("/_sim/openai/v1/chat/completions", json={})  # rejected requests are recorded too
    everything = client.get("/_sim/requests")
    assert "secret-sarvam" not in everything.text and "test-key" not in everything.text
    recorded = everything.json()
    assert [(r["provider"], r["operation"], r["method"]) for r in recorded] == [
        ("sarvam", "translate", "POST"),
        ("deepgram", "health", "GET"),
        ("openai", "chat", "POST"),
        ("openai", "chat", "POST"),
    ]
    assert recorded[0]["traceparent"] == traceparent
    assert recorded[0]["path"] == "/_sim/sarvam/translate"
    assert recorded[1]["traceparent"] is None
    assert recorded[0]["time"].endswith("Z")
    assert [r["provider"] for r in client.get("/_sim/requests", params={"provider": "openai"}).json()] == [
        "openai"
    ] * 2
    assert client.delete("/_sim/requests").json() == []
    assert client.get("/_sim/requests").json() == []


def test_control_routes_are_not_recorded(client: httpx.Client) -> None:
    set_fault(client, provider="openai", error_rate=0)
    client.get("/_sim/faults")
    assert client.get("/_sim/requests").json() == []


@pytest.mark.unit
def test_the_request_log_keeps_the_last_thousand() -> None:
    log = RequestLog()
    for index in range(REQUEST_LOG_SIZE + 5):
        log.record(provider="openai", operation="chat", method="POST", path=f"/{index}", traceparent=None)
    entries = log.entries()
    assert len(entries) == REQUEST_LOG_SIZE
    assert entries[0].path == "/5" and entries[-1].path == f"/{REQUEST_LOG_SIZE + 4}"


def test_two_routers_have_independent_state() -> None:
    with (
        live_server(Litestar([create_simulator_router()])) as first,
        live_server(Litestar([create_simulator_router()])) as second,
        httpx.Client(timeout=5) as client,
    ):
        assert (
            client.put(f"{first.url}/_sim/faults", json={"provider": "openai", "error_rate": 1}).status_code
            == 200
        )
        assert client.get(f"{first.url}/_sim/openai/v1/models", headers=OPENAI).status_code == 500
        assert client.get(f"{second.url}/_sim/openai/v1/models", headers=OPENAI).status_code == 200
        assert client.get(f"{second.url}/_sim/faults").json() == []
        assert len(client.get(f"{first.url}/_sim/requests").json()) == 1


def test_only_the_fault_routes_are_in_the_openapi_schema() -> None:
    with live_server(Litestar([create_simulator_router()])) as server:
        schema = httpx.get(f"{server.url}/schema/openapi.json").json()
    sim_paths = {path: set(item) for path, item in schema["paths"].items() if path.startswith("/_sim")}
    assert sim_paths == {"/_sim/faults": {"get", "put", "delete"}}
    fault_schema = json.dumps(schema["components"])
    assert "error_rate" in fault_schema and "chunk_delay_ms" in fault_schema

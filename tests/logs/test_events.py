"""Each log event and its fields, caused through the gateway's HTTP surface."""

from __future__ import annotations

import re

from tests.hardening.servers import RedisServer
from tests.support import free_port

from .capture import logged_gateway

HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
FAST_ALERTS = {"ALERT_WINDOW": "30s", "ALERT_FOR": "200ms", "ALERT_EVAL_INTERVAL": "100ms", "ALERT_MIN_REQUESTS": "1"}


def test_a_failed_call_is_logged_with_its_fields_and_the_trace_of_its_problem_answer() -> None:
    with logged_gateway({"SARVAM_MAX_FAILURES": "50", "OPENAI_MAX_FAILURES": "50"}) as (gw, lines):
        gw.fault("sarvam", operation="translate", error_rate=1.0, status_code=500)
        answer = gw.translate()  # falls back to OpenAI, which serves
        assert answer.status_code == 200 and answer.headers["x-fallback"] == "true"
        gw.fault("openai", operation="chat", error_rate=1.0, status_code=503)
        problem = gw.translate()
        assert problem.status_code == 502
    trace_id = problem.json()["trace_id"]
    first, sarvam, openai = lines.events("provider.call.failed")
    assert first["trace_id"] == answer.json()["request_id"]
    assert sarvam["trace_id"] == openai["trace_id"] == trace_id
    assert {k: sarvam[k] for k in ("level", "logger", "provider", "operation", "error_type", "status", "attempt",
                                    "fallback")} == {
        "level": "warning", "logger": "app.events", "provider": "sarvam", "operation": "translate",
        "error_type": "upstream_5xx", "status": 500, "attempt": 1, "fallback": False}
    assert (openai["provider"], openai["operation"], openai["status"], openai["fallback"]) == (
        "openai", "chat", 503, True)
    for event in (sarvam, openai):
        assert HEX16.match(event["span_id"]) and HEX32.match(event["trace_id"])
        assert 0 < event["duration_ms"] < 5000
        assert event["request_id"]  # the provider's id of the failed request
    assert sarvam["span_id"] != openai["span_id"]  # each provider call's own span


def test_breaker_transitions_refusals_and_the_upstream_hold() -> None:
    env = {"SARVAM_MAX_FAILURES": "2", "SARVAM_CIRCUIT_RESET_TIME": "60", "FALLBACKS_ENABLED": "false",
           "DEEPGRAM_RATE_LIMIT": "1"}
    with logged_gateway(env) as (gw, lines):
        gw.fault("sarvam", operation="translate", error_rate=1.0, status_code=500)
        assert [gw.translate().status_code for _ in range(3)] == [502, 502, 503]
        tts = {"text": "hello", "language_code": "en-US", "provider": "deepgram"}
        assert [gw.client.post("/v1/tts", json=tts).status_code for _ in range(2)] == [200, 429]
        assert gw.translate(target="xx-XX").status_code in (400, 422)
        gw.fault("openai", operation="chat", error_rate=1.0, status_code=429, retry_after=7)
        chat = {"messages": [{"role": "user", "content": "hi"}]}
        assert [gw.client.post("/v1/chat/completions", json=chat).status_code for _ in range(2)] == [429, 429]

    [opened] = lines.events("breaker.transition", provider="sarvam")
    assert (opened["operation"], opened["from"], opened["to"], opened["level"]) == (
        "translate", "closed", "open", "warning")
    [refused] = lines.events("provider.rejected", provider="sarvam", reason="circuit_open")
    assert refused["operation"] == "translate" and refused["level"] == "warning" and HEX32.match(refused["trace_id"])
    [limited] = lines.events("provider.rejected", provider="deepgram")
    assert (limited["operation"], limited["reason"]) == ("tts", "rate_limited")
    [invalid] = lines.events("provider.rejected", reason="invalid_input")
    assert invalid["level"] == "info"
    [hold] = lines.events("provider.hold")
    assert (hold["provider"], hold["operation"], hold["retry_after_s"], hold["level"]) == ("openai", "chat", 7.0,
                                                                                          "warning")
    [held] = lines.events("provider.rejected", provider="openai")
    assert held["reason"] == "rate_limited"


def test_alert_transitions_and_failed_deliveries() -> None:
    env = {**FAST_ALERTS, "SARVAM_MAX_FAILURES": "50", "FALLBACKS_ENABLED": "false",
           "ALERTMANAGER_URL": f"http://127.0.0.1:{free_port()}"}
    with logged_gateway(env) as (gw, lines):
        gw.fault("sarvam", operation="translate", error_rate=1.0, status_code=500)
        assert gw.translate().status_code == 502
        rate_low = {"alertname": "ProviderSuccessRateLow"}  # the budget-burn alerts fire on it too
        lines.wait(lambda: lines.events("alert.transition", state="firing", severity="critical", **rate_low))
        gw.clear_faults()
        for _ in range(40):
            assert gw.translate().status_code == 200
        lines.wait(lambda: len(lines.events("alert.transition", state="resolved", **rate_low)) == 2)
        lines.wait(lambda: lines.events("alert.delivery_failed"))
    transitions = [(e["severity"], e["state"]) for e in lines.events(
        "alert.transition", alertname="ProviderSuccessRateLow", provider="sarvam", operation="translate")]
    for severity in ("warning", "critical"):
        assert [s for sev, s in transitions if sev == severity] == ["pending", "firing", "resolved"]
    firing = lines.events("alert.transition", state="firing", severity="critical", **rate_low)[0]
    assert firing["level"] == "warning" and firing["value"] == 0.0 and firing["threshold"] == 0.8
    assert firing["runbook_url"].endswith("#providersuccessratelow")
    failed = lines.events("alert.delivery_failed")[0]
    assert failed["level"] == "warning" and failed["alerts"] >= 1 and "ConnectError" in failed["error"]


def test_shared_state_going_down_and_coming_back() -> None:
    redis = RedisServer()  # not started: the gateway starts without it
    with logged_gateway({"STATE_REDIS_URL": redis.url}) as (_, lines):
        [down] = lines.events("state_backend.transition")
        assert (down["backend"], down["status"], down["level"]) == ("redis", "down", "warning")
        assert "Redis unreachable" in down["message"]
        redis.start()
        try:
            up = lines.wait(lambda: lines.events("state_backend.transition", status="up"))[0]
        finally:
            redis.stop()
    assert up["backend"] == "redis" and up["level"] == "info"


def test_start_up_summary_is_redacted_and_shutdown_is_logged() -> None:
    secret = "sk-startup-summary-secret"
    env = {"OPENAI_API_KEY": secret, "ADMIN_API_KEY": "adm-startup-secret", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    with logged_gateway(env) as (_, lines):
        [start] = lines.events("gateway.start")
    [stop] = lines.events("gateway.stop")
    assert start["level"] == "info" and start["version"]
    config = start["config"]
    assert config["services"]["openai"]["mode"] == "live" and config["services"]["sarvam"]["mode"] == "simulated"
    assert config["admin_auth"] is True and config["log_summary_interval"] == 10.0
    assert secret not in lines.text() and "adm-startup-secret" not in lines.text()
    assert stop["uptime_s"] > 0
    assert lines.records()[-1]["event.name"] == "gateway.stop"


def test_successful_calls_log_nothing_unless_the_access_log_is_on() -> None:
    with logged_gateway() as (gw, lines):
        body = gw.translate().json()
    assert body["request_id"] not in lines.text()
    with logged_gateway({"ACCESS_LOG": "true"}) as (gw, lines):
        body = gw.translate().json()
    [line] = [r for r in lines.records() if r["logger"] == "app.access" and r["path"] == "/v1/translate"]
    assert line["trace_id"] == body["request_id"] and HEX16.match(line["span_id"])
    assert re.match(r'^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] "POST /v1/translate HTTP/1\.1" 200 '
                    r"\d+ anonymous \d\.\d+(e-\d+)?$", line["message"]), line["message"]
    assert line["status"] == 200 and line["duration_ms"] > 0
    assert line["client"] == "anonymous" and line["cost_usd"] > 0


def test_log_level_and_readable_text_in_development() -> None:
    with logged_gateway({"LOG_FORMAT": "text", "LOG_LEVEL": "warning", "FALLBACKS_ENABLED": "false"}) as (gw, lines):
        gw.fault("sarvam", operation="translate", error_rate=1.0, status_code=500)
        trace_id = gw.translate().json()["trace_id"]
    [line] = lines.text().splitlines()  # start and stop are info: below LOG_LEVEL
    assert "WARNING app.events [" + trace_id in line
    assert re.search(r"\] sarvam\.translate failed: upstream_5xx \(HTTP 500\) after [\d.]+ ms, attempt 1$", line), line

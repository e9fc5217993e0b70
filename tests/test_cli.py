"""The CLI as a person runs it: help, a bad setting, and ``serve`` with the simulator mounted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest
from websockets.sync.client import connect

from tests.support import free_port, wait_until

pytestmark = pytest.mark.stack

ENV = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.startswith("OTEL_")}


def answering(process: subprocess.Popen[str] | subprocess.Popen[bytes],
              request: httpx.Request) -> httpx.Response | None:
    """``request``'s response once the server started by ``process`` answers it (None before that)."""
    assert process.poll() is None, "the server exited"
    try:
        with httpx.Client(timeout=1) as client:
            return client.send(request)
    except httpx.TransportError:
        return None


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, timeout=60,
                          env={**ENV, **(env or {})}, check=False)


def test_help_lists_the_subcommands() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("serve", "simulate", "rules", "dashboards"):
        assert command in result.stdout


def test_a_bad_setting_stops_start_up_naming_it() -> None:
    result = run("serve", "--port", str(free_port()), env={"SARVAM_MAX_FAILURES": "many"})
    assert result.returncode == 2
    assert "SARVAM_MAX_FAILURES: expected an integer >= 1 (got 'many')" in result.stderr


def test_serve_runs_the_gateway_with_the_simulator_mounted() -> None:
    """... and logs no line per WebSocket connection (uvicorn writes three a session at INFO)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port)],
                               env={**ENV, "OPENAI_API_KEY": "sk-live-looking-key", "OPENAI_BASE_URL":
                                    f"http://127.0.0.1:{port}/_sim/openai/v1"},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        live = httpx.Request("GET", f"http://127.0.0.1:{port}/health/live")
        wait_until(lambda: (r := answering(process, live)) is not None and r.status_code == 200, 30,
                   "the gateway to start", interval=0.1)
        models = httpx.get(f"http://127.0.0.1:{port}/_sim/openai/v1/models", headers={"Authorization": "Bearer x"})
        assert models.status_code == 200 and models.json()["data"]
        translated = httpx.post(f"http://127.0.0.1:{port}/v1/translate", json={
            "input": "Good morning", "source_language_code": "en-IN", "target_language_code": "hi-IN"})
        assert translated.status_code == 200 and translated.json()["provider"] == "sarvam"
        with connect(f"ws://127.0.0.1:{port}/deepgram/v1/listen?encoding=linear16&sample_rate=16000",
                     additional_headers={"Authorization": "Token x"}, open_timeout=10) as session:
            session.send(b"\0" * 32000)  # a second of audio: one transcript, relayed from the mounted simulator
            assert '"Results"' in session.recv(timeout=10)
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    # uvicorn re-raises the signal it shut down for, as a terminated process should.
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert "provider sarvam: simulated" in output and "provider openai: live" in output
    assert f"http://127.0.0.1:{port}/health/" in output and "/metrics" in output and "/schema" in output
    assert "sk-live-looking-key" not in output
    assert "WebSocket" not in output and "connection open" not in output and "connection closed" not in output


def test_simulate_runs_the_simulator_alone() -> None:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "app", "simulate", "--port", str(port)], env=ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        translate = httpx.Request("POST", f"http://127.0.0.1:{port}/_sim/sarvam/translate",
                                  headers={"api-subscription-key": "k"},
                                  json={"input": "hello", "source_language_code": "en-IN",
                                        "target_language_code": "hi-IN"})
        response = wait_until(lambda: answering(process, translate), 30, "the simulator to start", 0.1)
        assert response.status_code == 200 and response.json()["translated_text"]
        no_key = httpx.post(f"http://127.0.0.1:{port}/_sim/sarvam/translate", json={"input": "x"})
        assert no_key.status_code == 403 and "error" in no_key.json()
    finally:
        process.terminate()
        process.wait(timeout=30)

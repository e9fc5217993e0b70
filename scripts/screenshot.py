"""Take the README's screenshot of ``/status`` during an incident: ``python scripts/screenshot.py``.

Starts the gateway (``python -m app serve``, every provider simulated) with short alert timings,
sends a minute of healthy traffic, then injects an incident through the simulator (Sarvam's
translate fails every other call, so the gateway falls back to OpenAI for those; Sarvam's TTS
answers in 6 s) and keeps the traffic going until both alerts fire. Then headless Chromium
(Debian's ``chromium``) renders ``/status`` to ``docs/status.png``. Takes about two minutes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import contextlib

from tests.status.browser import png_colours, screenshot
from tests.support import free_port

ENV = {
    "ENVIRONMENT": "development", "LOG_LEVEL": "warning",
    "ALERT_WINDOW": "1m", "ALERT_FOR": "10s", "ALERT_EVAL_INTERVAL": "2s", "MONITORING_BUCKET": "2s",
    "HEALTH_CHECK_INTERVAL": "10", "METRICS_INTERVAL": "3600", "SARVAM_RATE_LIMIT": "2000",
    **{f"{p}_API_KEY": "" for p in ("SARVAM", "DEEPGRAM", "OPENAI", "RAG")},
}
CHART_WINDOW = "2m"


def start_gateway(port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, **ENV}
    env.pop("ADMIN_API_KEY", None)
    process = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port)], cwd=ROOT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise SystemExit(f"the gateway exited with {process.returncode}")
        time.sleep(0.2)
    process.terminate()
    raise SystemExit("the gateway did not start within 30 s")


class Traffic:
    """Client calls in background threads, each loop pausing ``pause`` seconds between calls."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def loop(self, call: Callable[[httpx.Client], httpx.Response], pause: float, copies: int = 1) -> None:
        def run() -> None:
            with httpx.Client(base_url=self.url, timeout=60) as client:
                while not self.stop.is_set():
                    with contextlib.suppress(httpx.HTTPError):
                        call(client)
                    self.stop.wait(pause)

        for _ in range(copies):
            thread = threading.Thread(target=run, daemon=True)
            thread.start()
            self.threads.append(thread)

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)


def translate(client: httpx.Client) -> httpx.Response:
    return client.post("/v1/translate", json={"input": "How are you today?", "source_language_code": "en-IN",
                                              "target_language_code": "hi-IN"})


def chat(client: httpx.Client) -> httpx.Response:
    return client.post("/v1/chat/completions", json={"model": "gpt-4o-mini",
                                                     "messages": [{"role": "user", "content": "Say hello"}]})


def rag_query(client: httpx.Client) -> httpx.Response:
    return client.post("/v1/rag/query", json={"query": "When is the clinic open?", "top_k": 2})


def tts(client: httpx.Client) -> httpx.Response:
    return client.post("/v1/tts", json={"text": "Namaste", "language_code": "hi-IN"})


def wait_for_alerts(client: httpx.Client, names: set[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        firing = {a["name"] for a in client.get("/health/alerts").json()["alerts"] if a["state"] == "firing"}
        if names <= firing:
            return
        time.sleep(1)
    raise SystemExit(f"alerts {sorted(names)} did not fire within {timeout:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "status.png")
    parser.add_argument("--healthy-seconds", type=float, default=60)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1600)
    args = parser.parse_args()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    gateway = start_gateway(port)
    traffic = Traffic(url)
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            client.post("/v1/rag/documents", json={"documents": [
                {"id": "hours", "text": "The clinic is open from 9 am to 5 pm, Monday to Saturday."},
                {"id": "fees", "text": "A consultation costs 300 rupees; follow-ups within a week are free."},
            ]}).raise_for_status()
            traffic.loop(translate, 0.4, copies=2)
            traffic.loop(chat, 0.5, copies=2)
            traffic.loop(rag_query, 1.0)
            traffic.loop(tts, 1.0, copies=3)
            print(f"healthy traffic for {args.healthy_seconds:.0f} s ...", flush=True)
            time.sleep(args.healthy_seconds)
            print("incident: sarvam.translate fails every other call, sarvam.tts answers in 6 s", flush=True)
            client.put("/_sim/faults", json={"provider": "sarvam", "operation": "translate",
                                             "error_rate": 0.5}).raise_for_status()
            client.put("/_sim/faults", json={"provider": "sarvam", "operation": "tts",
                                             "latency_ms": 6000}).raise_for_status()
            wait_for_alerts(client, {"ProviderSuccessRateLow", "ProviderLatencyHigh"}, timeout=90)
            time.sleep(4)  # a few more points of the incident on the charts
            args.output.parent.mkdir(parents=True, exist_ok=True)
            screenshot(f"{url}/status?window={CHART_WINDOW}", args.output, args.width, args.height)
        width, height, colours = png_colours(args.output.read_bytes())
        if colours < 200:
            raise SystemExit(f"{args.output} looks blank ({colours} colours)")
        print(f"wrote {args.output} ({width}x{height}, {colours} colours)")
        return 0
    finally:
        traffic.stop.set()
        gateway.terminate()
        gateway.wait(timeout=30)
        traffic.join()


if __name__ == "__main__":
    raise SystemExit(main())

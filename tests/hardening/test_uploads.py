"""Large audio uploads in bounded memory (issue 18), through real HTTP on loopback.

The gateway spools ``/v1/stt`` uploads past 1 MiB to files in ``UPLOAD_SPOOL_DIR``; these tests
watch that directory to see a spool appear while an upload arrives and disappear after every
outcome. Raw sockets play the clients that HTTP libraries will not: one announcing a body over
the limit, one sending a chunked body without end, one that stalls, one that sends a byte now and
then past the deadline, and one that goes away. The full disk is a real one (issue 23): a 2 MiB
tmpfs mounted for the test.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.uploads import write_wav
from tests.gateway import Gateway, running_gateway
from tests.hardening.servers import gateway_process, simulated_providers, simulator_process
from tests.support import live_server, wait_until

pytestmark = pytest.mark.stack

ROOT = Path(__file__).resolve().parents[2]
BOUNDARY = "b0undary"
AUDIO_LIMIT_MB = 4
"""Each speech provider's ``P_MAX_AUDIO_SIZE_MB`` here: ``/v1/stt`` takes bodies up to 5 MiB."""
LIMITS = {"SARVAM_MAX_AUDIO_SIZE_MB": str(AUDIO_LIMIT_MB), "DEEPGRAM_MAX_AUDIO_SIZE_MB": str(AUDIO_LIMIT_MB)}
FORM_HEAD = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="language_code"\r\n\r\nhi-IN\r\n'
             f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
             "Content-Type: audio/wav\r\n\r\n").encode()
FORM_TAIL = f"\r\n--{BOUNDARY}--\r\n".encode()
DEADLINE = 4
"""``UPLOAD_DEADLINE`` of the module's gateway, in seconds."""


def spooled(spool: Path) -> list[Path]:
    return [p for p in spool.rglob("*") if p.is_file()]


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """3 MiB of WAV (16 s, 48 kHz stereo): past the 1 MiB spool threshold, under the limit."""
    path = tmp_path_factory.mktemp("audio") / "speech.wav"
    write_wav(path, 3)
    return path.read_bytes()


@pytest.fixture(scope="module")
def spool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spool")


@pytest.fixture(scope="module")
def gw(spool: Path) -> Iterator[Gateway]:
    env = {**LIMITS, "UPLOAD_SPOOL_DIR": str(spool), "UPLOAD_IDLE_TIMEOUT": "1", "UPLOAD_DEADLINE": str(DEADLINE)}
    with running_gateway(env) as gateway:
        yield gateway


@pytest.fixture(autouse=True)
def no_faults(gw: Gateway) -> Iterator[None]:
    yield
    gw.clear_faults()


def stt(gw: Gateway, audio: bytes, language: str = "hi-IN", **fields: str) -> httpx.Response:
    return gw.client.post("/v1/stt", files={"file": ("a.wav", audio, "audio/wav")},
                          data={"language_code": language, **fields})


def assert_problem(response: Any, status: int, error_type: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["error_type"] == error_type
    return body


@contextmanager
def raw_upload(url: str, headers: dict[str, str]) -> Iterator[socket.socket]:
    """A connection that has sent a ``/v1/stt`` request head with ``headers``."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=15)
    head = {"Host": host, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}", **headers}
    sock.sendall(("POST /v1/stt HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in head.items()) + "\r\n").encode())
    try:
        yield sock
    finally:
        sock.close()


def answer(sock: socket.socket) -> tuple[int, dict[str, Any]]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    assert response.getheader("content-type") == "application/problem+json"
    return response.status, json.loads(response.read())


def test_an_upload_is_spooled_and_its_file_removed_after_success(gw: Gateway, spool: Path, speech: bytes) -> None:
    response = stt(gw, speech)
    assert response.status_code == 200, response.text
    assert response.json()["audio_duration_sec"] == pytest.approx(len(speech) / 192000, abs=0.01)
    assert spooled(spool) == []


def test_a_content_length_over_the_limit_is_refused_before_the_body_is_sent(gw: Gateway, spool: Path) -> None:
    with raw_upload(gw.url, {"Content-Length": str(100 * 1024 * 1024)}) as sock:
        status, problem = answer(sock)  # not one byte of the body was sent
    assert (status, problem["error_type"]) == (413, "invalid_input")
    assert spooled(spool) == []


def test_a_chunked_upload_is_cut_at_the_limit(gw: Gateway, spool: Path) -> None:
    sent = 0
    chunk = b"\x00" * 65536
    with raw_upload(gw.url, {"Transfer-Encoding": "chunked"}) as sock:

        def send() -> None:
            nonlocal sent
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(FORM_HEAD), FORM_HEAD))
                while sent < 64 * 1024 * 1024:
                    sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    sent += len(chunk)
            except OSError:  # the gateway stopped reading: expected
                pass

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        status, problem = answer(sock)
        sent_when_answered = sent
    sender.join(timeout=10)
    assert (status, problem["error_type"]) == (413, "invalid_input")
    assert "larger than this route accepts" in problem["detail"]
    assert (AUDIO_LIMIT_MB + 1) * 1024 * 1024 <= sent_when_answered < 16 * 1024 * 1024
    wait_until(lambda: spooled(spool) == [], what="the spool to be empty")


def test_a_stalled_upload_is_timed_out_and_its_spool_removed(gw: Gateway, spool: Path, speech: bytes) -> None:
    body = FORM_HEAD + speech + FORM_TAIL
    with raw_upload(gw.url, {"Content-Length": str(len(body))}) as sock:
        sock.sendall(body[:2 * 1024 * 1024])
        wait_until(lambda: len(spooled(spool)) == 1, what="one spooled file")  # past 1 MiB it is on disk
        started = time.monotonic()
        status, problem = answer(sock)
    assert (status, problem["error_type"]) == (408, "invalid_input")
    assert time.monotonic() - started < 5  # UPLOAD_IDLE_TIMEOUT is 1 s here
    assert spooled(spool) == []


def test_an_upload_that_never_stalls_is_cut_at_its_deadline(gw: Gateway, spool: Path, speech: bytes) -> None:
    body = FORM_HEAD + speech + FORM_TAIL
    trickled = 0
    with raw_upload(gw.url, {"Content-Length": str(len(body))}) as sock:
        started = time.monotonic()
        sock.sendall(body[:2 * 1024 * 1024])
        wait_until(lambda: len(spooled(spool)) == 1, what="one spooled file")

        def trickle() -> None:  # a byte every 0.2 s: never idle for UPLOAD_IDLE_TIMEOUT (1 s)
            nonlocal trickled
            try:
                for byte in body[2 * 1024 * 1024:]:
                    sock.sendall(bytes([byte]))
                    trickled += 1
                    time.sleep(0.2)
            except OSError:  # the gateway answered and closed
                pass

        threading.Thread(target=trickle, daemon=True).start()
        status, problem = answer(sock)
        took = time.monotonic() - started
    assert (status, problem["error_type"]) == (408, "invalid_input")
    assert problem["detail"] == f"the upload took longer than its deadline of {DEADLINE} s"
    assert DEADLINE - 0.5 < took < DEADLINE + 3 and trickled >= 5
    wait_until(lambda: spooled(spool) == [], 5, "the spool to be empty")


@contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path``: a disk that really fills up."""
    path.mkdir()
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    subprocess.run([*sudo, "mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run([*sudo, "umount", "--lazy", str(path)], check=True)


def test_a_full_disk_is_a_507_its_spool_removed_and_the_gateway_serves_on(tmp_path: Path, speech: bytes) -> None:
    one_mib = tmp_path / "one.wav"
    write_wav(one_mib, 1)  # just past the 1 MiB in memory: it is spooled to disk too
    with small_disk(tmp_path / "disk", "2m") as disk, running_gateway({**LIMITS, "UPLOAD_SPOOL_DIR": str(disk)}) as gw:
        body = assert_problem(stt(gw, speech), 507, "insufficient_storage")  # 3 MiB on a 2 MiB disk
        assert body["title"] == "Insufficient Storage"
        assert body["detail"] == "the gateway could not store the upload: No space left on device"
        assert spooled(disk) == []
        # The drop-in route that takes the audio as the body answers in Deepgram's error shape.
        raw = gw.client.post("/deepgram/v1/listen", content=speech, headers={"content-type": "audio/wav"})
        assert (raw.status_code, raw.headers["x-gateway-error-type"]) == (507, "insufficient_storage"), raw.text
        assert spooled(disk) == []
        # The partial spools are gone, so the space is back: the gateway goes on serving uploads.
        response = stt(gw, one_mib.read_bytes())
        assert response.status_code == 200, response.text
        assert gw.translate().status_code == 200
        assert spooled(disk) == []


def test_spools_of_processes_that_no_longer_run_are_removed_at_start(tmp_path: Path) -> None:
    ended = subprocess.Popen(["true"])
    ended.wait()
    host = socket.gethostname()
    left = {name: tmp_path / f"gateway-uploads-{name}" for name in
            (f"{host}-{ended.pid}-crashed", f"{host}-{os.getpid()}-running", f"elsewhere-{ended.pid}-other",
             "unrelated")}
    for directory in left.values():
        directory.mkdir()
        (directory / "upload-x").write_bytes(b"\x00" * 1024)
    with running_gateway({"UPLOAD_SPOOL_DIR": str(tmp_path)}):
        remaining = {path.name for path in tmp_path.iterdir()}
    assert remaining == {f"gateway-uploads-{name}" for name in left} - {f"gateway-uploads-{host}-{ended.pid}-crashed"}


def test_a_client_gone_mid_upload_leaves_nothing_behind(gw: Gateway, spool: Path, speech: bytes) -> None:
    body = FORM_HEAD + speech + FORM_TAIL
    with raw_upload(gw.url, {"Content-Length": str(len(body))}) as sock:
        sock.sendall(body[:2 * 1024 * 1024])
        wait_until(lambda: len(spooled(spool)) == 1, what="one spooled file")
    wait_until(lambda: spooled(spool) == [], 5, "the spool to be empty")
    assert stt(gw, speech).status_code == 200  # and the gateway carries on


def test_invalid_audio_and_provider_errors_remove_the_spool(gw: Gateway, spool: Path, speech: bytes) -> None:
    not_audio = b"\x01" * len(speech)
    assert_problem(stt(gw, not_audio), 422, "invalid_input")
    assert spooled(spool) == []
    assert_problem(stt(gw, speech, language="qq-QQ"), 422, "invalid_input")
    assert spooled(spool) == []
    gw.fault("sarvam", operation="stt", error_rate=1.0, status_code=500)
    assert_problem(stt(gw, speech, provider="sarvam"), 502, "upstream_5xx")
    assert spooled(spool) == []


def test_a_broken_form_is_a_clear_400(gw: Gateway, spool: Path) -> None:
    broken = FORM_HEAD + b"\x00" * (2 * 1024 * 1024)  # never closed by its boundary
    response = gw.client.post("/v1/stt", content=broken,
                              headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"})
    assert_problem(response, 400, "invalid_input")
    assert_problem(gw.client.post("/v1/stt", json={"file": "x"}), 415, "invalid_input")
    assert spooled(spool) == []


class Upstream:
    """Sarvam answering 500 and Deepgram answering a transcript, each recording what it received."""

    def __init__(self) -> None:
        self.received: dict[str, dict[str, Any]] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        provider = "sarvam" if scope["path"].endswith("/speech-to-text") else "deepgram"
        self.received[provider] = {"headers": headers, "body": bytes(body)}
        answer: dict[str, Any]
        if provider == "sarvam":
            status, answer = 500, {"error": {"message": "down", "code": "internal_server_error"}}
        else:
            status, answer = 200, {"results": {"channels": [{"alternatives": [{"transcript": "namaste"}]}]}}
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": json.dumps(answer).encode()})


def test_fallback_streams_the_same_spooled_file_to_both_providers(spool: Path, speech: bytes) -> None:
    upstream = Upstream()
    with live_server(upstream) as server:
        env = {**LIMITS, "UPLOAD_SPOOL_DIR": str(spool), "SARVAM_BASE_URL": server.url,
               "DEEPGRAM_BASE_URL": server.url, "SARVAM_API_KEY": "s", "DEEPGRAM_API_KEY": "d"}
        with running_gateway(env) as gw:
            response = stt(gw, speech, language="en-IN")
    assert response.status_code == 200, response.text
    assert (response.headers["x-provider"], response.headers["x-fallback"]) == ("deepgram", "true")
    sarvam, deepgram = upstream.received["sarvam"], upstream.received["deepgram"]
    # Sarvam: a multipart form with the whole file, announced with its length (not chunked).
    assert sarvam["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    assert int(sarvam["headers"]["content-length"]) == len(sarvam["body"])
    assert b'name="language_code"\r\n\r\nen-IN' in sarvam["body"] and speech in sarvam["body"]
    # Deepgram, after the fallback: the same file again, as the raw body.
    assert deepgram["headers"]["content-type"] == "audio/wav"
    assert int(deepgram["headers"]["content-length"]) == len(speech)
    assert hashlib.sha256(deepgram["body"]).digest() == hashlib.sha256(speech).digest()
    assert spooled(spool) == []


def test_shutdown_removes_the_spool_of_an_upload_in_flight(tmp_path: Path, speech: bytes) -> None:
    spool = tmp_path / "spool"
    with simulator_process(tmp_path) as sim:
        env = {**simulated_providers(sim.url), **LIMITS, "UPLOAD_SPOOL_DIR": str(spool),
               "UPLOAD_IDLE_TIMEOUT": "60", "SHUTDOWN_GRACE": "1"}
        with gateway_process(env, tmp_path) as gateway:
            body = FORM_HEAD + speech + FORM_TAIL
            with raw_upload(gateway.url, {"Content-Length": str(len(body))}) as sock:
                sock.sendall(body[:2 * 1024 * 1024])
                wait_until(lambda: len(spooled(spool)) == 1, what="one spooled file")
                gateway.terminate()
                gateway.process.wait(timeout=20)
    assert spooled(spool) == []
    assert list(spool.iterdir()) == []  # the process's own spool directory went too


@pytest.mark.timeout(120)
def test_concurrent_large_uploads_stay_in_bounded_memory(tmp_path: Path) -> None:
    """The bounded CI run of ``bench/uploads.py``: the memory bound, not the times."""
    out = tmp_path / "uploads.json"
    run = subprocess.run([sys.executable, "bench/uploads.py", "--mode", "ci", "--json", str(out)],
                         check=False, cwd=ROOT, capture_output=True, text=True, timeout=110)
    assert out.exists(), run.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["failures"] == [], results
    (scenario,) = results["scenarios"]
    assert scenario["answers"] == {"200": scenario["uploads"]}
    assert scenario["rss_mib"]["growth"] <= scenario["max_rss_growth_mib"] <= 24
    assert run.returncode == 0

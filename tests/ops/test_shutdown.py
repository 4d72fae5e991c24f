"""Graceful shutdown: SIGTERM stops new connections, finishes requests in flight, stops workers after
their current attempt, closes the database and exits within the grace period."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from collections.abc import Awaitable, Callable

import requests

from server.app import create_app
from server.http.base import STATE
from server.jobs.runtime import Consumer
from server.settings import load_settings
from tests.conftest import free_port


def start_slow_post(inst, token: str, text: str) -> tuple[socket.socket, bytes]:
    """Send a status post whose body is only partly uploaded: its handler is now in flight."""
    body = f"status={text}".encode()
    sock = socket.create_connection(("127.0.0.1", inst.port))
    sock.sendall(b"POST /api/v1/statuses HTTP/1.1\r\nHost: " + inst.domain.encode() + b"\r\n"
                 b"Authorization: Bearer " + token.encode() + b"\r\n"
                 b"Content-Type: application/x-www-form-urlencoded\r\n"
                 b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[:4])
    time.sleep(0.3)
    return sock, body[4:]


def read_response(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_sigterm_finishes_the_request_in_flight_and_data_survives(make_instance):
    metrics_port = free_port()
    inst = make_instance("graceful", env={"CROSSTALK_METRICS_PORT": str(metrics_port),
                                          "CROSSTALK_LOG_LEVEL": "info"})
    inst.create_user("alice")
    token = inst.token("alice")
    sock, rest = start_slow_post(inst, token, "written+during+shutdown")

    started = time.monotonic()
    inst.proc.send_signal(signal.SIGTERM)
    # Readiness flips at once (the metrics port stays up until the main one is done) ...
    deadline = time.monotonic() + 5
    ready = None
    while time.monotonic() < deadline:
        ready = requests.get(f"http://127.0.0.1:{metrics_port}/readyz", timeout=2)
        if ready.status_code == 503:
            break
        time.sleep(0.05)
    assert ready is not None and ready.status_code == 503
    assert ready.json()["checks"]["shutdown"] == "in progress"
    # ... and no new connection is accepted on the main port.
    try:
        requests.get(f"{inst.base_url}/livez", timeout=1)
        refused = False
    except requests.ConnectionError:
        refused = True
    assert refused

    # The request in flight still completes, and its answer tells the client to reconnect elsewhere.
    sock.sendall(rest)
    answer = read_response(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    assert b"Connection: close" in answer
    assert b"written during shutdown" in answer
    assert inst.proc.wait(10) == 0
    assert time.monotonic() - started < 5
    log = inst.log()
    assert "shutting down" in log and "stopped cleanly" in log
    # The database was closed cleanly: the last connection checkpointed and removed the WAL.
    assert inst.database_closed_cleanly()

    inst.proc = None
    inst.start()
    statuses = inst.api("alice").timeline_home()
    assert [s["content"] for s in statuses] == ["<p>written during shutdown</p>"]


def test_idle_keepalive_connections_do_not_delay_exit(make_instance):
    inst = make_instance("idle")
    session = requests.Session()
    assert session.get(f"{inst.base_url}/api/v1/instance", timeout=5).status_code == 200
    started = time.monotonic()
    inst.proc.send_signal(signal.SIGTERM)
    assert inst.proc.wait(10) == 0
    assert time.monotonic() - started < 2.5


def test_a_request_that_never_finishes_is_cut_at_the_grace_period(make_instance):
    inst = make_instance("stuck", env={"CROSSTALK_SHUTDOWN_GRACE_SECONDS": "2", "CROSSTALK_LOG_LEVEL": "info"})
    inst.create_user("alice")
    sock, _ = start_slow_post(inst, inst.token("alice"), "never+sent")
    started = time.monotonic()
    inst.proc.send_signal(signal.SIGTERM)
    assert inst.proc.wait(10) == 0
    elapsed = time.monotonic() - started
    assert 1.8 < elapsed < 4.5, elapsed
    sock.close()
    assert "grace period over" in inst.log()
    assert inst.database_closed_cleanly()


class LoopWorker:
    """A job runtime worker around a plain coroutine function, for these tests."""

    def __init__(self, body: Callable[[], Awaitable[None]]) -> None:
        self.body = body

    async def run(self) -> None:
        await self.body()

    def wake(self) -> None:
        pass

    def request_stop(self) -> None:
        pass

    async def wait_idle(self, grace: float) -> None:
        pass


def app_for(tmp_path, **env: str):
    settings = load_settings(env={"CROSSTALK_DOMAIN": "ops.example.test", "CROSSTALK_DATA_DIR": str(tmp_path),
                              **env})
    app = create_app(settings)
    return app, app[STATE]


async def test_readyz_needs_every_registered_worker_alive(tmp_path, aiohttp_client):
    app, state = app_for(tmp_path)
    client = await aiohttp_client(app)
    stop_crash = asyncio.Event()

    async def healthy() -> None:
        await state.stopping.wait()

    async def crashing() -> None:
        await stop_crash.wait()
        raise RuntimeError("lost the queue")

    state.jobs.declare(Consumer("test-healthy", LoopWorker(healthy)))
    state.jobs.declare(Consumer("test-crashing", LoopWorker(crashing)))
    ready = await client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["checks"]["workers"] == "ok"
    scrape = await client.get("/metrics")
    assert f"crosstalk_workers_running {float(len(state.jobs.tasks))}" in await scrape.text()

    stop_crash.set()
    await asyncio.sleep(0.05)
    ready = await client.get("/readyz")
    body = await ready.json()
    assert ready.status == 503 and body["status"] == "unavailable"
    assert body["checks"]["workers"] == "stopped: test-crashing"
    assert body["checks"]["database"] == "ok"


async def test_workers_finish_their_current_attempt_then_stop(tmp_path):
    _, state = app_for(tmp_path)
    attempts: list[str] = []

    async def polite() -> None:
        # A delivery loop: checks `stopping` between attempts, never in the middle of one.
        while not state.stopping.is_set():
            attempts.append("start")
            await asyncio.sleep(0.3)
            attempts.append("done")

    async def stubborn() -> None:
        await asyncio.Event().wait()  # ignores `stopping`: must be cancelled

    state.jobs.started = True  # the app is not started here: jobs declared now start at once
    state.jobs.declare(Consumer("test-polite", LoopWorker(polite)))
    state.jobs.declare(Consumer("test-stuck", LoopWorker(stubborn)))
    stuck = state.jobs.tasks["test-stuck"]
    await asyncio.sleep(0.1)
    began = time.monotonic()
    await state.jobs.stop(grace=1.0)
    assert attempts == ["start", "done"]
    assert stuck.cancelled()
    assert 0.9 < time.monotonic() - began < 2.0
    assert state.jobs.dead() == ["test-polite", "test-stuck"]


def test_open_streams_are_counted_and_end_at_shutdown(make_instance):
    inst = make_instance("streams")
    inst.create_user("alice")
    token = inst.token("alice", "read")
    stream = requests.get(f"{inst.base_url}/api/v1/streaming/user", stream=True, timeout=10,
                          headers={"Authorization": f"Bearer {token}"})
    assert stream.status_code == 200
    deadline = time.monotonic() + 5
    gauge = ""
    while time.monotonic() < deadline:
        scrape = requests.get(f"{inst.base_url}/metrics", timeout=5).text
        gauge = next(line for line in scrape.splitlines() if line.startswith("crosstalk_streaming_connections "))
        if gauge.endswith(" 1.0"):
            break
        time.sleep(0.05)
    assert gauge == "crosstalk_streaming_connections 1.0"

    started = time.monotonic()
    inst.proc.send_signal(signal.SIGTERM)
    # A stream never finishes by itself; shutdown ends it instead of waiting out the grace period.
    assert inst.proc.wait(10) == 0
    assert time.monotonic() - started < 3
    stream.close()


def test_with_a_drain_sigterm_turns_readiness_off_while_requests_are_still_answered(make_instance):
    """shutdown.drain_seconds: a load balancer polling /readyz sees the process go before its listener
    closes, so nothing is sent to a socket about to be reset; a second signal ends the drain."""
    inst = make_instance("draining", env={"CROSSTALK_SHUTDOWN_DRAIN_SECONDS": "30", "CROSSTALK_LOG_LEVEL": "info"})
    inst.create_user("alice")
    token = inst.token("alice")
    inst.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 5
    ready = None
    while time.monotonic() < deadline:
        ready = requests.get(f"{inst.base_url}/readyz", timeout=2)  # answered: still listening
        if ready.status_code == 503:
            break
        time.sleep(0.05)
    assert ready is not None and ready.status_code == 503 and ready.json()["checks"]["shutdown"] == "in progress"
    # New connections are still accepted and served, and told to go elsewhere afterwards.
    posted = requests.post(f"{inst.base_url}/api/v1/statuses", data={"status": "while draining"},
                           headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert posted.status_code == 200, posted.text
    assert posted.headers["Connection"] == "close"
    assert inst.proc.poll() is None
    # A second signal skips the rest of the drain: the process exits well before the 30 s are over.
    started = time.monotonic()
    inst.proc.send_signal(signal.SIGTERM)
    assert inst.proc.wait(15) == 0
    assert time.monotonic() - started < 15
    assert "not ready, still accepting requests" in inst.log()

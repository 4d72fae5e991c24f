"""The event bus going away and coming back (issue 11, "Bad input and faults"), with a PRIVATE Redis or
NATS server per test (the shared ones on 6379/4222 are never touched): while the broker is gone two
`serve` processes keep answering (200 or a clean 503, never a 500), /readyz names the bus, a clear log
line says it went away, and a post accepted meanwhile is not lost; once the broker is back on the same
port, streaming between the processes works again without restarting them."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests

from tests.conftest import Instance, free_port
from tests.services import require_binary

STATUS_OK_OR_UNAVAILABLE = {200, 503}  # while the bus is gone; a 500 is never acceptable


class PrivateBroker:
    """A Redis or NATS server of this test's own, on a free loopback port, that can be killed and
    started again on the same port."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        if kind == "redis":
            binary = require_binary("redis-server", "install the redis-server package (apt-get install redis-server)")
            self.url = f"redis://127.0.0.1:{self.port}/0"
            self.argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                         "--appendonly", "no", "--dir", str(workdir)]
        else:
            binary = require_binary("nats-server", "install nats-server (https://docs.nats.io/running-a-nats-service)")
            self.url = f"nats://127.0.0.1:{self.port}"
            self.argv = [binary, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(workdir / "js")]

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / f"{self.kind}.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} server exited early: {(self.workdir / f'{self.kind}.log').read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.kind} server did not listen on {self.port}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None


@pytest.fixture(params=["redis", "nats"])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PrivateBroker]:
    server = PrivateBroker(request.param, tmp_path / "broker")
    try:
        server.start()
        yield server
    finally:
        server.kill()


@pytest.fixture
def two_processes(tmp_path: Path, broker: PrivateBroker) -> Iterator[tuple[Instance, Instance]]:
    first = Instance(tmp_path / "data", {"CROSSTALK_BUS_URL": broker.url})
    second = Instance(tmp_path / "data", {"CROSSTALK_BUS_URL": broker.url, "CROSSTALK_DOMAIN": first.domain,
                                          "CROSSTALK_DATABASE_URL": first.database_url})
    second.log_path = tmp_path / "second.log"
    try:
        first.start()
        second.start()
        yield first, second
    finally:
        second.stop()
        first.stop()


def wait_for(condition: Callable[[], Any], within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        time.sleep(0.1)


def bus_check(inst: Instance) -> tuple[int, str]:
    answer = requests.get(f"http://127.0.0.1:{inst.port}/readyz", timeout=5)
    return answer.status_code, answer.json()["checks"]["bus"]


async def update_with_id(ws: aiohttp.ClientWebSocketResponse, status_id: str, within: float) -> float:
    """Seconds until the stream carries the update for `status_id` (other updates are skipped)."""
    started = time.monotonic()
    deadline = started + within
    while True:
        try:
            msg = await ws.receive(timeout=max(0.01, deadline - time.monotonic()))
        except TimeoutError:
            raise AssertionError(f"status {status_id} did not reach the stream within {within}s") from None
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        event = json.loads(msg.data)
        if event["event"] == "update" and json.loads(event["payload"])["id"] == status_id:
            return time.monotonic() - started


def home_ids(inst: Instance, token: str) -> set[str]:
    answer = requests.get(f"http://127.0.0.1:{inst.port}/api/v1/timelines/home", timeout=5,
                          headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code in STATUS_OK_OR_UNAVAILABLE, answer.text
    return {s["id"] for s in answer.json()} if answer.status_code == 200 else set()


def post(inst: Instance, token: str, text: str) -> requests.Response:
    answer = requests.post(f"http://127.0.0.1:{inst.port}/api/v1/statuses", timeout=10, data={"status": text},
                           headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code in {200, 503}, (answer.status_code, answer.text)
    return answer


async def test_the_bus_going_away_and_coming_back_is_survived(two_processes, broker):
    first, second = two_processes
    first.create_user("alice")
    first.create_user("bob")
    alice_token, bob_token = first.token("alice"), first.token("bob")
    bob = first.api("bob")
    bob.account_follow(first.api("alice").me()["id"])

    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"ws://127.0.0.1:{second.port}/api/v1/streaming?stream=user",
                                      headers={"Authorization": f"Bearer {bob_token}"})
        await asyncio.sleep(0.3)
        before = (await asyncio.to_thread(post, first, alice_token, "Before the bus goes")).json()
        assert await update_with_id(ws, before["id"], 5.0) < 2.0

        # The broker dies: both processes notice, and say so on /readyz.
        broker.kill()
        for inst in (first, second):
            status, check = await asyncio.to_thread(
                wait_for, lambda inst=inst: (lambda r: r if r[0] == 503 else None)(bus_check(inst)), 15.0,
                f"/readyz of {inst.port} reports the bus down")
            assert check.startswith("unavailable"), check

        # Meanwhile requests answer 200 or a clean 503, never a 500; an accepted post is kept.
        for inst in (first, second):
            for path in ("/api/v1/instance", "/api/v1/timelines/public", "/livez"):
                answer = await asyncio.to_thread(requests.get, f"http://127.0.0.1:{inst.port}{path}", timeout=5)
                assert answer.status_code in STATUS_OK_OR_UNAVAILABLE, (path, answer.status_code, answer.text)
        during = await asyncio.to_thread(post, first, alice_token, "While the bus is gone")
        accepted = during.json()["id"] if during.status_code == 200 else None
        await asyncio.to_thread(home_ids, second, bob_token)
        for inst in (first, second):
            assert "bus: lost the connection" in inst.log(), inst.log()

        # The broker comes back on the same port: no restart of the instances.
        await asyncio.to_thread(broker.start)
        for inst in (first, second):
            await asyncio.to_thread(wait_for, lambda inst=inst: bus_check(inst) == (200, "ok"), 15.0,
                                    f"/readyz of {inst.port} reports the bus back")
        if accepted is not None:
            await asyncio.to_thread(wait_for, lambda: accepted in home_ids(second, bob_token), 10.0,
                                    "the post accepted while the bus was gone reaches the follower")
        # Once /readyz says the bus is back (subscription and publishing both work), streaming
        # between the processes works again at once: the first post after it reaches the stream.
        after = (await asyncio.to_thread(post, first, alice_token, "After the bus is back")).json()
        assert await update_with_id(ws, after["id"], 5.0) < 2.0
        for inst in (first, second):
            assert "bus: connected to" in inst.log(), inst.log()
        await ws.close()

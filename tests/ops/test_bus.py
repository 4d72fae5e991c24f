"""Two processes of one instance share a bus (Redis or NATS): a post made through one reaches a stream
open on the other, and a revocation through one closes a stream on the other."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
import requests

from tests.conftest import Instance
from tests.services import NATS_URL, REDIS_URL, require


@pytest.fixture(params=["redis", "nats"])
def bus_url(request):
    return require("Redis", REDIS_URL) if request.param == "redis" else require("NATS", NATS_URL)


@pytest.fixture
def two_processes(tmp_path, bus_url):
    first = Instance(tmp_path / "data", {"CROSSTALK_BUS_URL": bus_url, "CROSSTALK_PASSWORD_GRANT": "true"})
    second = Instance(tmp_path / "data", {"CROSSTALK_BUS_URL": bus_url, "CROSSTALK_DOMAIN": first.domain,
                                          "CROSSTALK_DATABASE_URL": first.database_url})
    second.log_path = tmp_path / "second.log"
    try:
        first.start()
        second.start()
        yield first, second
    finally:
        second.stop()
        first.stop()


async def next_update(ws: aiohttp.ClientWebSocketResponse, within: float) -> dict:
    deadline = time.monotonic() + within
    while True:
        msg = await ws.receive(timeout=max(0.01, deadline - time.monotonic()))
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        event = json.loads(msg.data)
        if event["event"] == "update":
            return json.loads(event["payload"])


async def test_a_post_through_one_process_reaches_a_stream_on_the_other(two_processes):
    first, second = two_processes
    first.create_user("alice")
    first.create_user("bob")
    alice, bob = first.api("alice"), first.api("bob")
    bob.account_follow(alice.me()["id"])
    bob_token = first.token("bob", "read")
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"ws://127.0.0.1:{second.port}/api/v1/streaming?stream=user",
                                      headers={"Authorization": f"Bearer {bob_token}"})
        await asyncio.sleep(0.3)
        started = time.monotonic()
        post = await asyncio.to_thread(alice.status_post, "Hello from the first process")
        update = await next_update(ws, 5.0)
        assert update["id"] == post["id"] and time.monotonic() - started < 2.0

        # Revoked through the first process: the stream on the second closes too.
        await asyncio.to_thread(first.cli, "admin", "reset-password", "bob", "--password", "another long one")
        while True:
            msg = await ws.receive(timeout=3.0)
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                break
    await asyncio.to_thread(check_after_revocation, second, bob_token)


def check_after_revocation(second: Instance, token: str) -> None:
    answer = requests.get(f"http://127.0.0.1:{second.port}/api/v1/accounts/verify_credentials", timeout=5,
                          headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401
    ready = requests.get(f"http://127.0.0.1:{second.port}/readyz", timeout=5).json()
    assert ready["checks"]["bus"] == "ok"


def test_an_unreachable_bus_at_start_is_one_line_naming_the_setting(tmp_path):
    inst = Instance(tmp_path / "data", {"CROSSTALK_BUS_URL": "redis://127.0.0.1:1/0"})
    inst.data_dir.mkdir(parents=True)
    result = inst.cli("serve", check=False)
    assert result.returncode == 2
    assert "bus.url (CROSSTALK_BUS_URL)" in result.stderr and "Traceback" not in result.stderr


def test_rate_limits_hold_across_processes_with_a_redis_bus(tmp_path):
    bus = require("Redis", REDIS_URL)
    limits = {"CROSSTALK_BUS_URL": bus, "CROSSTALK_RATE_LIMIT_ENABLED": "true",
              "CROSSTALK_RATE_LIMIT_ADDRESS_REQUESTS": "6"}
    first = Instance(tmp_path / "data", limits)
    second = Instance(tmp_path / "data", {**limits, "CROSSTALK_DOMAIN": first.domain,
                                          "CROSSTALK_DATABASE_URL": first.database_url})
    second.log_path = tmp_path / "second.log"
    try:
        first.start()
        second.start()
        def public(port: int) -> requests.Response:
            return requests.get(f"http://127.0.0.1:{port}/api/v1/timelines/public", timeout=5)

        left = int(public(first.port).headers["X-RateLimit-Remaining"])  # the start-up probes counted too
        assert 0 < left < 6
        # Anonymous calls from one address, alternating between the processes: one count for both.
        statuses = [public(port).status_code for port in (second.port, first.port) * 3][:left + 2]
        assert statuses == [200] * left + [429, 429]
    finally:
        second.stop()
        first.stop()

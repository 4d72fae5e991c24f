"""Several processes of one instance on one PostgreSQL database: two `serve --no-workers` web processes
and a `crosstalk worker`, sharing a Redis (or NATS) bus.

- A client streaming from the first web process receives a post made through the second.
- The worker killed with SIGKILL in the middle of a post's deliveries: after it restarts, every
  follower's inbox has the post, none that the dead worker had recorded as delivered gets it again,
  and a real federating instance shows it once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests
from aiohttp import web
from mastodon import Mastodon

from server.ids import new_id, now_iso
from tests.conftest import Instance, free_port
from tests.federation_e2e.conftest import FED_ENV, wait_for
from tests.services import NATS_URL, REDIS_URL, require, scratch_postgres


@pytest.fixture
def database() -> Iterator[str]:
    yield from scratch_postgres()


class Cluster:
    """web-1 and web-2 (`serve --no-workers`) and a worker, one domain, one database, one bus."""

    def __init__(self, root: Path, database: str, bus: str, env: dict[str, str] | None = None) -> None:
        shared = {**(env or {}), "CROSSTALK_DATABASE_URL": database, "CROSSTALK_BUS_URL": bus,
                  "CROSSTALK_PASSWORD_GRANT": "true"}
        self.web1 = Instance(root / "data", shared, command=("serve", "--no-workers"))
        same = {**shared, "CROSSTALK_DOMAIN": self.web1.domain}
        self.web2 = Instance(root / "data", same, command=("serve", "--no-workers"))
        self.worker = Instance(root / "data", same, command=("worker",))
        self.web2.log_path, self.worker.log_path = root / "web2.log", root / "worker.log"

    def start(self) -> Cluster:
        for proc in (self.web1, self.web2, self.worker):
            proc.start()
        return self

    def stop(self) -> None:
        for proc in (self.worker, self.web2, self.web1):
            proc.stop()

    def token(self, name: str, via: Instance) -> str:
        """A token through OAuth's password grant on `via` (quicker than the admin CLI)."""
        app = requests.post(f"{via.base_url}/api/v1/apps", timeout=10, data={
            "client_name": "cluster test", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
            "scopes": "read write follow"}).json()
        answer = requests.post(f"{via.base_url}/oauth/token", timeout=10, data={
            "grant_type": "password", "client_id": app["client_id"], "client_secret": app["client_secret"],
            "username": f"{name}@example.test", "password": "correct horse battery", "scope": "read write follow"})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])

    def api(self, name: str, via: Instance) -> Any:
        from mastodon import Mastodon
        return Mastodon(access_token=self.token(name, via), api_base_url=via.base_url)


@pytest.fixture(params=["redis", "nats"])
def bus(request) -> str:
    return require("Redis", REDIS_URL) if request.param == "redis" else require("NATS", NATS_URL)


async def test_a_post_through_one_web_process_streams_from_the_other(tmp_path, database, bus):
    cluster = Cluster(tmp_path, database, bus)
    try:
        await asyncio.to_thread(cluster.start)
        web1, web2 = cluster.web1, cluster.web2
        for name in ("alice", "bob"):
            await asyncio.to_thread(web1.create_user, name)
        alice = await asyncio.to_thread(cluster.api, "alice", web2)
        token = await asyncio.to_thread(cluster.token, "bob", web1)
        bob = Mastodon(access_token=token, api_base_url=web1.base_url)
        await asyncio.to_thread(bob.account_follow, (await asyncio.to_thread(alice.me))["id"])
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(f"ws://127.0.0.1:{web1.port}/api/v1/streaming?stream=user",
                                          headers={"Authorization": f"Bearer {token}"})
            await asyncio.sleep(0.3)
            started = time.monotonic()
            post = await asyncio.to_thread(alice.status_post, "Made through web-2, streamed from web-1")
            update = await _next_update(ws, 5.0)
            assert update["id"] == post["id"]
            assert time.monotonic() - started < 2.0
            await ws.close()
        # The home timeline was filled by the worker, and reads the same through either web process.
        on_web2 = Mastodon(access_token=token, api_base_url=web2.base_url)
        home = await asyncio.to_thread(lambda: [s["id"] for s in on_web2.timeline_home()])
        assert post["id"] in home
    finally:
        await asyncio.to_thread(cluster.stop)


async def _next_update(ws: aiohttp.ClientWebSocketResponse, within: float) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        msg = await ws.receive(timeout=max(0.01, deadline - time.monotonic()))
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        event = json.loads(msg.data)
        if event["event"] == "update":
            return json.loads(event["payload"])


class SlowInboxes:
    """Inboxes of remote followers on several loopback ports (each a host to the instance). Half the
    hosts answer at once, the other half after `delay` seconds, so a worker killed while the slow
    ones are in flight has recorded the fast ones as delivered. Every POST is recorded."""

    def __init__(self, hosts: int, delay: float) -> None:
        self.ports = [free_port() for _ in range(hosts)]
        self.slow = set(self.ports[hosts // 2:])
        self.delay = delay
        self.received: list[tuple[str, str]] = []  # (inbox URL, activity id)
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        self._started.wait(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def inbox(request: web.Request) -> web.Response:
            body = await request.json()
            port = request.transport.get_extra_info("sockname")[1]
            with self._lock:
                self.received.append((f"http://127.0.0.1:{port}{request.path}", body.get("id", "")))
            if port in self.slow:
                await asyncio.sleep(self.delay)
            return web.Response(status=202)

        async def start() -> None:
            app = web.Application()
            app.router.add_post("/users/{name}/inbox", inbox)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            for port in self.ports:
                await web.TCPSite(self._runner, "127.0.0.1", port).start()
            self._started.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()

    def of(self, post_uri: str) -> list[str]:
        """Inboxes that received an activity about this post (its Create), once per receipt."""
        with self._lock:
            return [inbox for inbox, aid in self.received if aid.startswith(post_uri)]

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def _add_remote_followers(database: str, followed: int, ports: list[int], count: int) -> list[str]:
    """Remote accounts following `followed`, each with an inbox of its own (no shared inbox), as if
    their Follow had been accepted; returns their inbox URLs."""
    import asyncpg

    from server.storage.postgres import to_postgres
    now = now_iso()
    accounts, follows = [], []
    for k in range(count):
        host = f"127.0.0.1:{ports[k % len(ports)]}"
        uri = f"http://{host}/users/r{k:03d}"
        account_id = new_id()
        accounts.append((account_id, f"r{k:03d}", host, f"R{k:03d}", uri, uri, f"{uri}/inbox", "",
                         f"{uri}/outbox", f"{uri}/followers", f"{uri}/following", now, now, now))
        follows.append((new_id(), account_id, followed, f"{uri}#follow", now))

    async def write() -> None:
        conn = await asyncpg.connect(database)
        try:
            async with conn.transaction():
                await conn.executemany(to_postgres(
                    "INSERT INTO accounts (id, username, domain, display_name, uri, url, inbox_url, shared_inbox_url,"
                    " outbox_url, followers_url, following_url, created_at, updated_at, fetched_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"), accounts)
                await conn.executemany(to_postgres(
                    "INSERT INTO follows (id, account_id, target_account_id, uri, created_at) VALUES (?, ?, ?, ?, ?)"),
                    follows)
                await conn.execute("UPDATE accounts SET followers_count = followers_count + $1 WHERE id = $2",
                                   count, followed)
        finally:
            await conn.close()
    asyncio.run(write())
    return [a[6] for a in accounts]


def test_a_worker_killed_mid_delivery_loses_nothing_and_resends_nothing_it_finished(
        tmp_path, make_instance, database):
    bus = require("Redis", REDIS_URL)
    inboxes = SlowInboxes(hosts=10, delay=3.0)
    # A dead worker's claims run out after 6 s (120 s by default); each slow inbox answers in 3.
    env = {**FED_ENV, "CROSSTALK_FEDERATION_DELIVERY_CLAIM_SECONDS": "6"}
    cluster = Cluster(tmp_path, database, bus, env)
    partner = make_instance("b", env=dict(FED_ENV))
    try:
        cluster.start()
        web1, web2, worker = cluster.web1, cluster.web2, cluster.worker
        web1.create_user("alice")
        partner.create_user("bob")
        alice, bob = cluster.api("alice", web2), partner.api("bob")
        alice_on_b = bob.account_search(f"alice@{web1.domain}", resolve=True)[0]
        bob.account_follow(alice_on_b["id"])  # lands on a web process; the worker applies it and accepts
        wait_for(lambda: bob.account_relationships(alice_on_b["id"])[0]["following"])
        followers = _add_remote_followers(database, int(alice.me()["id"]), inboxes.ports, 30)

        post = alice.status_post("Fan-out across a worker crash")
        fast = {i for i in followers if int(i.split(":")[2].split("/")[0]) not in inboxes.slow}

        def done() -> set[str]:
            return {r[0] for r in web1.sql(
                "SELECT d.inbox_url FROM deliveries d JOIN outbox_activities o ON o.id = d.outbox_id"
                " WHERE o.activity_id LIKE ? AND d.state = 'done'", (post["uri"] + "%",))}

        # Kill when every fast inbox has it, the worker has recorded some of those as done (it marks
        # them in batches, within tens of milliseconds) and the slow ones are still waiting for their answer.
        wait_for(lambda: fast <= set(inboxes.of(post['uri'])), timeout=20, interval=0.02)
        wait_for(done, timeout=inboxes.delay / 2, interval=0.02)
        os.killpg(worker.proc.pid, signal.SIGKILL)
        worker.proc.wait(10)
        worker.proc = None
        done_before = done()
        assert done_before and not set(followers) <= done_before, "the kill did not land mid-delivery"

        worker.start()
        wait_for(lambda: set(followers) <= set(inboxes.of(post['uri'])), timeout=40)
        wait_for(lambda: web1.sql("SELECT count(*) FROM deliveries WHERE state != 'done'")[0][0] == 0, timeout=30)
        received = inboxes.of(post['uri'])
        twice = {i for i in received if received.count(i) > 1}
        assert not twice & done_before, f"delivered again after being recorded as done: {twice & done_before}"
        # The real partner applied it once (it also de-duplicates a resent activity by its id).
        on_b = wait_for(lambda: [s for s in bob.timeline_home() if s["uri"] == post["uri"]])
        assert len(on_b) == 1
    finally:
        cluster.stop()
        inboxes.close()

"""`serve --no-workers` answers requests while `crosstalk worker` does the background work: a remote
follow is applied and accepted, and a post is delivered, by the worker process."""

from __future__ import annotations

import requests

from tests.conftest import Instance
from tests.federation_e2e.conftest import FED_ENV, wait_for
from tests.services import REDIS_URL, require


def deliveries(inst: Instance) -> float:
    text = requests.get(f"http://127.0.0.1:{inst.port}/metrics", timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("crosstalk_deliveries_total{") and 'outcome="delivered"' in line)


def test_web_processes_leave_deliveries_and_inbound_activities_to_the_worker(tmp_path, make_instance):
    bus = require("Redis", REDIS_URL)
    env = {**FED_ENV, "CROSSTALK_BUS_URL": bus}
    web = Instance(tmp_path / "a", env, command=("serve", "--no-workers"))
    worker = Instance(tmp_path / "a", {**env, "CROSSTALK_DOMAIN": web.domain, "CROSSTALK_DATABASE_URL": web.database_url},
                      command=("worker",))
    worker.log_path = tmp_path / "worker.log"
    b = make_instance("b", env=dict(FED_ENV))
    try:
        web.start()
        worker.start()
        web.create_user("alice")
        b.create_user("bob")
        alice, bob = web.api("alice"), b.api("bob")
        found = bob.account_search(f"alice@{web.domain}", resolve=True)
        bob.account_follow(found[0]["id"])
        # B's Follow lands in the web process's inbox; the worker applies it and delivers the Accept.
        wait_for(lambda: bob.account_relationships(found[0]["id"])[0]["following"])
        post = alice.status_post("Delivered by the worker")
        wait_for(lambda: [s for s in bob.timeline_home() if s["uri"] == post["uri"]])
        assert deliveries(worker) >= 2 and deliveries(web) == 0
        ready = requests.get(f"http://127.0.0.1:{worker.port}/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
        assert requests.get(f"http://127.0.0.1:{worker.port}/api/v1/instance", timeout=5).status_code == 404
    finally:
        worker.stop()
        web.stop()

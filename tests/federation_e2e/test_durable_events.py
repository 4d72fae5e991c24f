"""Side effects of a post survive a crash between its commit and their dispatch (the event outbox)."""

from __future__ import annotations

import os
import signal

import requests

from tests.federation_e2e.conftest import FED_ENV, wait_for


def remote(api, acct):
    found = api.account_search(acct, resolve=True)
    assert found, f"could not resolve {acct}"
    return found[0]


def kill_hard(inst) -> None:
    os.killpg(inst.proc.pid, signal.SIGKILL)
    inst.proc.wait(10)
    inst.proc = None


def pending_events(inst) -> int:
    return inst.sql("SELECT count(*) FROM events WHERE dispatched_at IS NULL")[0][0]


def duplicate_creates(inst) -> float:
    """How many Create activities the instance's inbox received a second time."""
    text = requests.get(f"{inst.base_url}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith("crosstalk_inbox_activities_total{") and 'type="Create"' in line \
                and 'outcome="duplicate"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_post_killed_before_dispatch_reaches_everyone_once_after_restart(make_instance):
    a = make_instance("a", env=dict(FED_ENV))
    b = make_instance("b", env=dict(FED_ENV))
    for name in ("alice", "carol", "dave"):
        a.create_user(name)
    b.create_user("bob")
    alice, carol = a.api("alice"), a.api("carol")
    bob = b.api("bob")
    carol.account_follow(alice.me()["id"])
    alice_on_b = remote(bob, f"alice@{a.domain}")
    bob.account_follow(alice_on_b["id"])
    wait_for(lambda: bob.account_relationships(alice_on_b["id"])[0]["following"])

    # The dispatcher is held back: the post commits, its events wait in the outbox.
    a.stop()
    a.env["CROSSTALK_JOBS_PAUSED"] = "outbox"
    a.start()
    alice, carol, dave = a.api("alice"), a.api("carol"), a.api("dave")
    post = alice.status_post("Quarterly numbers are in, @dave please check")
    assert pending_events(a) >= 1
    assert post["id"] not in [s["id"] for s in carol.timeline_home()]  # no fan-out happened yet

    kill_hard(a)
    del a.env["CROSSTALK_JOBS_PAUSED"]
    a.start()
    carol, dave = a.api("carol"), a.api("dave")

    wait_for(lambda: post["id"] in [s["id"] for s in carol.timeline_home()])
    mentions = [n for n in dave.notifications() if n["type"] == "mention"]
    assert [n["status"]["id"] for n in mentions] == [post["id"]]
    on_b = wait_for(lambda: [s for s in bob.timeline_home() if s["uri"] == post["uri"]])
    assert len(on_b) == 1
    wait_for(lambda: pending_events(a) == 0)
    # Give a second delivery, if there were one, time to arrive; then check B received it once.
    wait_for(lambda: requests.get(f"{a.base_url}/readyz", timeout=5).status_code == 200)
    assert duplicate_creates(b) == 0
    assert [s["uri"] for s in bob.timeline_home()].count(post["uri"]) == 1
    sent = a.sql("SELECT count(*) FROM deliveries d JOIN outbox_activities o ON o.id = d.outbox_id "
                 "WHERE o.activity_id LIKE ? AND d.state = 'done'", (post["uri"] + "%",))[0][0]
    assert sent == 1

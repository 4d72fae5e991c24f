"""The inbox across restarts and slow peers: nothing is decided before the domain rules are loaded,
nothing accepted with 202 is lost, and one slow server holds up only its own activities."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.federation_e2e.conftest import FED_ENV, wait_for
from tests.federation_e2e.gts_peer import PUBLIC, GtsPeer

ALLOWLIST_ENV = {**FED_ENV, "CROSSTALK_FEDERATION_MODE": "allowlist"}
AS = "https://www.w3.org/ns/activitystreams"


@pytest.fixture
def crowd():
    peer = GtsPeer(usernames=tuple(f"user{i}" for i in range(12)))
    yield peer
    peer.close()


def like(actor, note_uri: str, n: int) -> dict:
    return {"@context": AS, "id": f"{actor.uri}/liked/{n}", "type": "Like", "actor": actor.uri, "object": note_uri}


def all_at_once(peer: GtsPeer, url: str, activities: list[tuple[object, dict]]) -> list[requests.Response]:
    """Sign every POST first, then send them together, as a busy partner's queue does after our restart."""
    prepared = [peer.signed_post(actor, url, activity) for actor, activity in activities]
    barrier = threading.Barrier(len(prepared))

    def send(item: tuple[bytes, dict[str, str]]) -> requests.Response:
        barrier.wait()
        return requests.post(url, data=item[0], headers=item[1], timeout=20)
    with ThreadPoolExecutor(len(prepared)) as pool:
        return list(pool.map(send, prepared))


def test_nothing_is_decided_before_the_rules_are_loaded(make_instance, crowd):
    a = make_instance("a", env=dict(ALLOWLIST_ENV))
    a.cli("admin", "domain", "allow", crowd.host)
    a.create_user("alice")
    alice = a.api("alice")
    alice_uri = f"{a.base_url}/users/alice"
    users = [crowd.users[f"user{i}"] for i in range(12)]
    for n, user in enumerate(users):  # the partner's accounts become known here
        follow = {"@context": AS, "id": f"{user.uri}/follow/{n}", "type": "Follow", "actor": user.uri, "object": alice_uri}
        assert crowd.post(user, f"{alice_uri}/inbox", follow).status_code == 202
    wait_for(lambda: len(alice.account_followers(alice.me()["id"], limit=40)) == len(users))
    first, second = alice.status_post("first"), alice.status_post("second")

    # Right after a start, the partner's first requests arrive together: every one is admitted.
    a.stop()
    a.start()
    answers = all_at_once(crowd, f"{a.base_url}/inbox", [(u, like(u, first["uri"], 1)) for u in users])
    assert [r.status_code for r in answers] == [202] * len(users), [r.text for r in answers]
    wait_for(lambda: alice.status(first["id"])["favourites_count"] == len(users))

    # Activities accepted but not yet applied when the server stopped (their rows are all that is
    # left of them) are applied at the next start, none refused for want of rules.
    a.stop()
    base_id = int(time.time() * 1000) << 16
    received = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    for n, u in enumerate(users):
        a.sql("INSERT INTO inbox_activities (id, activity_id, actor_uri, body, received_at) VALUES (?, ?, ?, ?, ?)",
              (base_id + n, f"{u.uri}/liked/2", u.uri, json.dumps(like(u, second["uri"], 2)), received))
    a.start()
    wait_for(lambda: alice.status(second["id"])["favourites_count"] == len(users))
    assert a.sql("SELECT count(*) FROM inbox_activities WHERE error IS NOT NULL")[0][0] == 0


def test_blocked_domain_is_refused_right_after_start(make_instance, crowd):
    a = make_instance("a", env=dict(FED_ENV))  # blocklist mode: everyone but blocked domains
    a.cli("admin", "domain", "block", crowd.host)
    a.create_user("alice")
    alice = a.api("alice")
    post = alice.status_post("not for them")
    users = list(crowd.users.values())
    a.stop()
    a.start()
    answers = all_at_once(crowd, f"{a.base_url}/inbox", [(u, like(u, post["uri"], 1)) for u in users])
    assert [r.status_code for r in answers] == [403] * len(users), [r.text for r in answers]
    assert crowd.requested == []  # not even their keys were fetched
    assert alice.status(post["id"])["favourites_count"] == 0


def test_one_slow_server_does_not_hold_up_the_others(make_instance):
    slow, fast = GtsPeer(usernames=("sam",)), GtsPeer(usernames=("fay",))
    try:
        a = make_instance("a", env=dict(FED_ENV))
        a.create_user("alice")
        alice = a.api("alice")
        alice_uri = f"{a.base_url}/users/alice"
        post = alice.status_post("anyone there?")
        sam, fay = slow.users["sam"], fast.users["fay"]
        # sam replies to a post of his own that his server takes 6 s to serve: applying the reply waits for it.
        parent = f"{sam.uri}/statuses/1"
        slow.documents["/users/sam/statuses/1"] = {
            "@context": AS, "id": parent, "type": "Note", "attributedTo": sam.uri, "content": "<p>slow</p>",
            "to": [PUBLIC], "published": "2026-01-01T10:00:00Z"}
        slow.slow_paths["/users/sam/statuses/1"] = 6.0
        reply = {"id": f"{sam.uri}/statuses/2", "type": "Note", "attributedTo": sam.uri, "inReplyTo": parent,
                 "content": "<p>@alice hi</p>", "to": [PUBLIC], "cc": [alice_uri],
                 "tag": [{"type": "Mention", "href": alice_uri, "name": f"@alice@{a.domain}"}]}
        create = {"@context": AS, "id": f"{sam.uri}/statuses/2/activity", "type": "Create", "actor": sam.uri,
                  "object": reply, "to": [PUBLIC], "cc": [alice_uri]}
        assert slow.post(sam, f"{alice_uri}/inbox", create).status_code == 202
        wait_for(lambda: "/users/sam/statuses/1" in slow.requested)  # the inbox worker now waits on it

        # Meanwhile fay, on another server, likes alice's post: applied at once, not after sam's fetch.
        assert fast.post(fay, f"{alice_uri}/inbox", like(fay, post["uri"], 1)).status_code == 202
        started = time.monotonic()
        wait_for(lambda: alice.status(post["id"])["favourites_count"] == 1, timeout=3)
        assert time.monotonic() - started < 3
        # sam's reply is applied in the end too.
        mention = wait_for(lambda: [n for n in alice.notifications() if n["type"] == "mention"], timeout=30)[0]
        assert mention["status"]["uri"] == reply["id"] and mention["status"]["in_reply_to_id"] is not None
    finally:
        slow.close()
        fast.close()

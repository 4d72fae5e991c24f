"""Polls and scheduled statuses, end to end with Mastodon.py against a real instance whose durations
are shortened by settings (polls may last 2 s, statuses may be scheduled 5 s ahead, the scheduler
ticks every second)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from mastodon import MastodonAPIError, MastodonNotFoundError

from tests.server.shared_instance import start_site, wait_for

FAST = {"CROSSTALK_POLLS_MIN_EXPIRATION": "2", "CROSSTALK_STATUSES_MIN_SCHEDULE_SECONDS": "5",
        "CROSSTALK_SCHEDULER_INTERVAL": "1"}
USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "gina", "hank")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = start_site(tmp_path_factory.mktemp("polls") / "a", USERS, FAST)
    yield site
    site.inst.dispose()


@pytest.fixture
def fast(site):
    """The shared instance, restarted if a test stopped it, and a client per user."""
    if site.inst.proc is None:
        site.inst.start()
    return site, {name: site.api(name) for name in USERS}


def in_seconds(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def test_poll_vote_results_and_end_notifications(fast):
    site, users = fast
    inst = site.inst
    alice, bob, carol, dave = users["alice"], users["bob"], users["carol"], users["dave"]
    status = alice.status_post("Where shall we meet?",
                               poll=alice.make_poll(["Office", "Park", "Café"], expires_in=600, multiple=True))
    poll = status["poll"]
    assert [o["title"] for o in poll["options"]] == ["Office", "Park", "Café"]
    assert poll["multiple"] and not poll["expired"] and poll["votes_count"] == 0
    assert poll["voted"] and poll["own_votes"] == []  # the author counts as having voted

    voted = bob.poll_vote(poll["id"], [0, 2])
    assert voted["votes_count"] == 2 and voted["voters_count"] == 1
    assert voted["own_votes"] == [0, 2] and voted["voted"]
    assert [o["votes_count"] for o in voted["options"]] == [1, 0, 1]
    with pytest.raises(MastodonAPIError, match="already voted"):
        bob.poll_vote(poll["id"], [1])
    with pytest.raises(MastodonAPIError, match="your own poll"):
        alice.poll_vote(poll["id"], [1])
    with pytest.raises(MastodonAPIError, match="not one of"):
        carol.poll_vote(poll["id"], [3])
    with pytest.raises(MastodonAPIError, match="only once"):
        carol.poll_vote(poll["id"], [1, 1])
    carol.poll_vote(poll["id"], 1)

    # The Poll entity travels in statuses, per viewer, and on its own.
    seen_by_carol = carol.status(status["id"])["poll"]
    assert seen_by_carol["own_votes"] == [1] and seen_by_carol["voters_count"] == 2
    assert dave.poll(poll["id"])["voted"] is False
    anonymous = requests.get(f"{inst.base_url}/api/v1/polls/{poll['id']}", timeout=10).json()
    assert anonymous["votes_count"] == 3 and "voted" not in anonymous

    # A short poll: after its end no more votes, and the voters and the author are told (the
    # non-voter is not), once.
    short = alice.status_post("Quick: tea or coffee?", poll=alice.make_poll(["tea", "coffee"], expires_in=5))
    bob.poll_vote(short["poll"]["id"], [0])
    carol.poll_vote(short["poll"]["id"], [1])
    wait_for(lambda: dave.poll(short["poll"]["id"])["expired"])
    with pytest.raises(MastodonAPIError, match="ended"):
        dave.poll_vote(short["poll"]["id"], [0])
    for api in (alice, bob, carol):
        note = wait_for(lambda api=api: [n for n in api.notifications(types=["poll"])])[0]
        assert note["status"]["id"] == short["id"] and note["status"]["poll"]["expired"]
        assert [o["votes_count"] for o in note["status"]["poll"]["options"]] == [1, 1]
        assert note["account"]["username"] == "alice"
    assert dave.notifications(types=["poll"]) == []
    time.sleep(1.5)  # one more scheduler tick: each poll ends once
    assert len(alice.notifications(types=["poll"])) == 1


def test_poll_rules_visibility_and_hidden_totals(fast):
    site, users = fast
    inst = site.inst
    erin, bob, frank = users["erin"], users["bob"], users["frank"]
    auth = site.auth("erin")
    url = f"{inst.base_url}/api/v1/statuses"

    # Form-encoded, as most clients send it.
    r = requests.post(url, data={"status": "form poll", "poll[options][]": ["yes", "no"],
                                 "poll[expires_in]": "600", "poll[hide_totals]": "true"}, headers=auth, timeout=10)
    assert r.status_code == 200, r.text
    hidden = r.json()
    assert [o["title"] for o in hidden["poll"]["options"]] == ["yes", "no"]
    assert not hidden["poll"]["multiple"]
    bob.poll_vote(hidden["poll"]["id"], [0])
    # hide_totals: voters see no per-option counts until the end; the author does.
    assert [o["votes_count"] for o in bob.poll(hidden["poll"]["id"])["options"]] == [None, None]
    assert [o["votes_count"] for o in erin.poll(hidden["poll"]["id"])["options"]] == [1, 0]
    with pytest.raises(MastodonAPIError, match="only one choice"):
        frank.poll_vote(hidden["poll"]["id"], [0, 1])

    bad = [
        ({"options": ["only one"], "expires_in": 600}, "at least 2"),
        ({"options": [str(i) for i in range(9)], "expires_in": 600}, "at most 8"),
        ({"options": ["same", "same"], "expires_in": 600}, "different"),
        ({"options": ["x" * 101, "y"], "expires_in": 600}, "100 characters"),
        ({"options": ["a", "b"], "expires_in": 1}, "at least 2 seconds"),
        ({"options": ["a", "b"], "expires_in": 99999999}, "at most"),
        ({"options": ["a", "b"]}, "expires_in"),
        ({"options": ["a", " "], "expires_in": 600}, "blank"),
        ({"options": ["a", "b"], "expires_in": "soon"}, "seconds"),
    ]
    for poll, message in bad:
        r = requests.post(url, json={"status": "bad poll", "poll": poll}, headers=auth, timeout=10)
        assert r.status_code == 422 and message in r.json()["error"], (poll, r.text)
    r = requests.post(url, json={"status": "both", "media_ids": ["1"], "poll": {"options": ["a", "b"], "expires_in": 600}},
                      headers=auth, timeout=10)
    assert r.status_code == 422 and "poll and media" in r.json()["error"]
    assert len(erin.account_statuses(erin.me()["id"])) == 1  # nothing half-written

    # A followers-only poll is invisible (404) to others, for reading and voting alike.
    private = erin.status_post("team only", visibility="private", poll=erin.make_poll(["a", "b"], expires_in=600))
    with pytest.raises(MastodonNotFoundError):
        frank.poll(private["poll"]["id"])
    with pytest.raises(MastodonNotFoundError):
        frank.poll_vote(private["poll"]["id"], [0])
    with pytest.raises(MastodonNotFoundError):
        frank.poll("12345")
    assert erin.instance()["configuration"]["polls"]["min_expiration"] == 2


def test_scheduled_statuses_lifecycle(fast):
    site, users = fast
    inst = site.inst
    gina, bob = users["gina"], users["bob"]
    later = gina.status_post("The quarterly report is out", scheduled_at=in_seconds(3600), visibility="unlisted")
    assert later["params"]["text"] == "The quarterly report is out" and later["params"]["visibility"] == "unlisted"
    soon = gina.status_post("Stand-up in five", scheduled_at=in_seconds(20),
                             poll=gina.make_poll(["coming", "skipping"], expires_in=300))
    assert soon["params"]["poll"]["options"] == ["coming", "skipping"]
    dropped = gina.status_post("never mind", scheduled_at=in_seconds(3600))

    assert {s["id"] for s in gina.scheduled_statuses()} == {later["id"], soon["id"], dropped["id"]}
    assert gina.scheduled_status(later["id"])["params"]["text"] == "The quarterly report is out"
    with pytest.raises(MastodonNotFoundError):
        bob.scheduled_status(later["id"])
    assert bob.scheduled_statuses() == []
    page = gina.scheduled_statuses(limit=2)
    assert len(page) == 2 and len(gina.fetch_next(page)) == 1

    gina.scheduled_status_delete(dropped["id"])
    with pytest.raises(MastodonNotFoundError):
        gina.scheduled_status(dropped["id"])
    moved = gina.scheduled_status_update(soon["id"], in_seconds(9))
    assert moved["scheduled_at"] != soon["scheduled_at"]
    with pytest.raises(MastodonAPIError, match="at least 5 seconds"):
        gina.scheduled_status_update(later["id"], in_seconds(2.5))
    with pytest.raises(MastodonAPIError, match="at least 5 seconds"):
        gina.status_post("too soon", scheduled_at=in_seconds(2.5))

    # When its time comes it is posted like any status, with its poll.
    posted = wait_for(lambda: [s for s in gina.account_statuses(gina.me()["id"]) if "Stand-up" in s["content"]],
                      timeout=20)[0]
    assert [o["title"] for o in posted["poll"]["options"]] == ["coming", "skipping"]
    assert {s["id"] for s in gina.scheduled_statuses()} == {later["id"]}
    time.sleep(1.5)
    assert len([s for s in gina.account_statuses(gina.me()["id"]) if "Stand-up" in s["content"]]) == 1

    # A time already past posts at once; nonsense is refused.
    now = gina.status_post("right away", scheduled_at=datetime.now(UTC) - timedelta(minutes=1))
    assert "right away" in now["content"]
    auth = site.auth("gina")
    url = f"{inst.base_url}/api/v1/statuses"
    for body, message in [({"status": "x", "scheduled_at": "next tuesday"}, "valid date"),
                          ({"status": " ", "scheduled_at": in_seconds(60).isoformat()}, "blank"),
                          ({"status": "x", "scheduled_at": in_seconds(60).isoformat(), "visibility": "loud"}, "Visibility"),
                          ({"status": "x", "scheduled_at": in_seconds(60).isoformat(), "media_ids": ["42"]}, "not found")]:
        r = requests.post(url, json=body, headers=auth, timeout=10)
        assert r.status_code == 422 and message in r.json()["error"], r.text
    r = requests.post(url, json={"status": "x", "scheduled_at": in_seconds(60).isoformat(), "in_reply_to_id": "77"},
                      headers=auth, timeout=10)
    assert r.status_code == 404
    assert {s["id"] for s in gina.scheduled_statuses()} == {later["id"]}


def test_scheduled_status_survives_restart(fast):
    site, users = fast
    inst = site.inst
    hank = users["hank"]
    item = hank.status_post("posted while the server was down", scheduled_at=in_seconds(7))
    inst.stop()
    time.sleep(max(0.0, (item["scheduled_at"] - datetime.now(UTC)).total_seconds()) + 0.5)
    inst.start()
    wait_for(lambda: [s for s in hank.account_statuses(hank.me()["id"]) if "while the server" in s["content"]])
    assert hank.scheduled_statuses() == []
    time.sleep(1.5)
    assert len(hank.account_statuses(hank.me()["id"])) == 1

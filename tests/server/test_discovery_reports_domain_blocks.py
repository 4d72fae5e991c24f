"""Follow suggestions, familiar followers, per-user domain blocks, reports (from the API and from a
remote Flag), no trends without shared use, and the unsupported push subscription — end to end against real instances."""

from __future__ import annotations

import pytest
import requests
from mastodon import MastodonAPIError, MastodonNotFoundError

from tests.federation_e2e.conftest import FED_ENV, FakeActor
from tests.federation_e2e.test_inbox_interop import post_cavage
from tests.server.shared_instance import start_site, wait_for

USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "mod")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = start_site(tmp_path_factory.mktemp("misc") / "a", USERS, dict(FED_ENV), admins=("mod",))
    yield site
    site.inst.dispose()


@pytest.fixture
def users(site):
    return {name: site.api(name) for name in USERS}


def ids(accounts):
    return [str(a["id"]) for a in accounts]


def test_suggestions_put_colleagues_first(site, users):
    alice, bob, carol, dave, erin, frank, mod = (users[n] for n in USERS)
    me = {n: str(users[n].me()["id"]) for n in USERS}
    alice.account_update_credentials(fields=[("Location", "Berlin"), ("Department", "Engineering")])
    bob.account_update_credentials(fields=[("department", "  engineering ")])
    erin.account_update_credentials(fields=[("DEPARTMENT", "Engineering")])
    carol.account_update_credentials(fields=[("Department", "Sales")])
    frank.account_update_credentials(fields=[("Department", "Sales")])
    carol.account_follow(me["frank"])
    dave.account_follow(me["frank"])
    dave.account_follow(me["carol"])

    found = alice.suggestions_v2()
    # Colleagues first: the Department field matches whatever its case and spacing.
    assert {str(s["account"]["id"]) for s in found[:2]} == {me["bob"], me["erin"]}
    assert all(s["source"] == "staff" and s["sources"] == ["featured"] for s in found[:2])
    # Then the most followed: frank (2 followers), carol (1), then the rest.
    assert [str(s["account"]["id"]) for s in found[2:4]] == [me["frank"], me["carol"]]
    assert all(s["source"] == "global" and s["sources"] == ["most_followed"] for s in found[2:])
    assert me["alice"] not in [str(s["account"]["id"]) for s in found]
    assert ids(alice.suggestions_v1()) == [str(s["account"]["id"]) for s in found]

    # Followed, dismissed, muted, blocking and undiscoverable accounts drop out.
    alice.account_follow(me["bob"])
    alice.suggestion_delete(me["erin"])
    alice.account_mute(me["carol"])
    dave.account_block(me["alice"])
    mod.account_update_credentials(discoverable=False)
    left = [str(s["account"]["id"]) for s in alice.suggestions_v2()]
    assert left == [me["frank"]]
    assert len(alice.suggestions_v2()) == 1
    r = requests.delete(f"{site.inst.base_url}/api/v1/suggestions/999", headers=site.auth("alice"), timeout=10)
    assert r.status_code == 404
    # Without a department of one's own, there are only the most followed.
    assert {s["source"] for s in users["dave"].suggestions_v2()} == {"global"}
    alice.account_unmute(me["carol"])
    dave.account_unblock(me["alice"])


def test_familiar_followers(site, users):
    alice, bob, carol, dave, erin, frank = (users[n] for n in USERS[:6])
    me = {n: str(users[n].me()["id"]) for n in USERS}
    for follower in (bob, dave, frank):
        follower.account_follow(me["erin"])
    carol.account_follow(me["bob"])
    carol.account_follow(me["dave"])
    carol.account_unfollow(me["frank"])  # frank follows erin too, but carol does not follow frank

    result = carol.account_familiar_followers([me["erin"], me["alice"]])
    assert [str(r["id"]) for r in result] == [me["erin"], me["alice"]]
    assert sorted(ids(result[0]["accounts"])) == sorted([me["bob"], me["dave"]])
    assert ids(result[1]["accounts"]) == []  # nobody carol follows follows alice
    r = requests.get(f"{site.inst.base_url}/api/v1/accounts/familiar_followers",
                     params=[("id[]", me["erin"])], headers=site.auth("carol"), timeout=10)
    assert r.status_code == 200 and sorted(ids(r.json()[0]["accounts"])) == sorted([me["bob"], me["dave"]])
    carol.account_mute(me["dave"])
    assert ids(carol.account_familiar_followers(me["erin"])[0]["accounts"]) == [me["bob"]]
    carol.account_unmute(me["dave"])
    r = requests.get(f"{site.inst.base_url}/api/v1/accounts/familiar_followers", params=[("id[]", "nope")],
                     headers=site.auth("carol"), timeout=10)
    assert r.status_code == 422


def test_reports_reach_the_moderators(site, users):
    alice, bob, carol, mod = users["alice"], users["bob"], users["carol"], users["mod"]
    carol_id = str(carol.me()["id"])
    spam = carol.status_post("Buy cheap watches at http://spam.example")
    hidden = carol.status_post("for my followers", visibility="private")
    report = bob.report(carol_id, status_ids=[spam["id"]], comment="Spam links again", category="spam")
    assert report["category"] == "spam" and report["comment"] == "Spam links again"
    assert [str(s) for s in report["status_ids"]] == [str(spam["id"])]
    assert str(report["target_account"]["id"]) == carol_id
    assert report["action_taken"] is False and report["forwarded"] is False

    note = wait_for(lambda: mod.notifications(types=["admin.report"]))[0]
    assert note["account"]["username"] == "bob" and str(note["report"]["id"]) == str(report["id"])
    assert note["report"]["comment"] == "Spam links again"
    assert alice.notifications(types=["admin.report"]) == []

    url, auth = f"{site.inst.base_url}/api/v1/reports", site.auth("bob")
    bob_status = bob.status_post("mine")
    cases = [
        ({"account_id": str(bob.me()["id"])}, 422, "yourself"),
        ({"account_id": carol_id, "status_ids": [str(bob_status["id"])]}, 404, "Record not found"),
        ({"account_id": carol_id, "status_ids": [str(hidden["id"])]}, 404, "Record not found"),
        ({"account_id": carol_id, "comment": "x" * 1001}, 422, "too long"),
        ({"account_id": carol_id, "category": "rude"}, 422, "Category"),
        ({"account_id": carol_id, "rule_ids": ["1"]}, 422, "Rule"),
        ({}, 422, "account_id"),
        ({"account_id": "12345"}, 404, "Record not found"),
    ]
    for body, status, message in cases:
        r = requests.post(url, json=body, headers=auth, timeout=10)
        assert r.status_code == status and message in r.json()["error"], (body, r.text)
    assert len(mod.notifications(types=["admin.report"])) == 1  # nothing stored for the refused ones
    with pytest.raises(MastodonAPIError):
        alice.report(str(alice.me()["id"]), comment="me?")


def test_a_remote_flag_becomes_a_report(site, users):
    mod, carol = users["mod"], users["carol"]
    before = len(mod.notifications(types=["admin.report"]))
    status = carol.status_post("something questionable")
    carol_uri = f"{site.inst.base_url}/users/carol"
    actor = FakeActor("reporter")
    try:
        flag = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{actor.base}/flags/1", "type": "Flag",
                "actor": actor.uri, "object": [carol_uri, status["uri"]], "content": "Reported from elsewhere"}
        for _ in range(2):  # delivered twice, stored once
            r = post_cavage(actor, f"{site.inst.base_url}/inbox", flag)
            assert r.status_code == 202, r.text
        notes = wait_for(lambda: [n for n in mod.notifications(types=["admin.report"])
                                  if n["report"]["comment"] == "Reported from elsewhere"])
        assert notes[0]["account"]["acct"] == f"reporter@127.0.0.1:{actor.port}"
        assert [str(s) for s in notes[0]["report"]["status_ids"]] == [str(status["id"])]
        assert str(notes[0]["report"]["target_account"]["id"]) == str(carol.me()["id"])
        import time
        time.sleep(1)
        assert len(mod.notifications(types=["admin.report"])) == before + 1
    finally:
        actor.close()


def test_nothing_trends_without_shared_use_and_push_without_a_subscription(site, users):
    alice = users["alice"]
    # Nothing here was tagged, linked or favourited by several accounts, so nothing trends
    # (tests/server/test_directory_trends.py covers trends that do).
    for path in ("trends", "trends/tags", "trends/statuses", "trends/links"):
        r = requests.get(f"{site.inst.base_url}/api/v1/{path}", timeout=10)
        assert r.status_code == 200 and r.json() == []
    assert alice.trending_tags() == [] and alice.trending_statuses() == [] and alice.trending_links() == []
    # No subscription yet: reading or changing it finds none, deleting it is fine, and subscribing
    # without a subscription is refused (tests/server/test_web_push.py covers Web Push itself).
    push = f"{site.inst.base_url}/api/v1/push/subscription"
    for method in ("GET", "PUT"):
        r = requests.request(method, push, headers=site.auth("alice"), timeout=10)
        assert r.status_code == 404 and r.json() == {"error": "Record not found"}
    r = requests.delete(push, headers=site.auth("alice"), timeout=10)
    assert r.status_code == 200 and r.json() == {}
    r = requests.post(push, headers=site.auth("alice"), timeout=10)
    assert r.status_code == 400 and "subscription" in r.json()["error"]
    with pytest.raises(MastodonNotFoundError):
        alice.push_subscription()


def test_domain_block_list_and_validation(site, users):
    alice = users["alice"]
    alice.domain_block("Example.COM")
    alice.domain_block("example.com")
    alice.domain_block("bücher.example")
    alice.domain_block("chat.example.org:8443")
    assert alice.domain_blocks() == ["chat.example.org:8443", "xn--bcher-kva.example", "example.com"]
    first = alice.domain_blocks(limit=1)
    assert first == ["chat.example.org:8443"] and alice.fetch_next(first) == ["xn--bcher-kva.example"]
    url, auth = f"{site.inst.base_url}/api/v1/domain_blocks", site.auth("alice")
    for domain, message in [("not a domain!", "not a valid domain"), ("", "blank"),
                            (site.inst.domain, "your own domain"), ("-bad-.example", "not a valid domain")]:
        r = requests.post(url, data={"domain": domain}, headers=auth, timeout=10)
        assert r.status_code == 422 and message in r.json()["error"], (domain, r.text)
    alice.domain_unblock("EXAMPLE.com")
    alice.domain_unblock("bücher.example")
    alice.domain_unblock("chat.example.org:8443")
    assert alice.domain_blocks() == []


def test_domain_block_hides_a_remote_domain(make_instance):
    a = make_instance("da", env=dict(FED_ENV))
    b = make_instance("db", env=dict(FED_ENV))
    a.create_user("alice")
    b.create_user("bob")
    alice, bob = a.api("alice"), b.api("bob")
    bob_on_a = alice.account_search(f"bob@{b.domain}", resolve=True)[0]
    alice_on_b = bob.account_search(f"alice@{a.domain}", resolve=True)[0]
    alice.account_follow(bob_on_a["id"])
    bob.account_follow(alice_on_b["id"])
    wait_for(lambda: alice.account_relationships(bob_on_a["id"])[0]["following"])
    wait_for(lambda: alice.account_followers(alice.me()["id"]))

    post = bob.status_post("news from B")
    wait_for(lambda: [s for s in alice.timeline_home() if s["uri"] == post["uri"]])
    # A direct message from the other server starts a conversation too.
    dm = bob.status_post(f"@alice@{a.domain} psst", visibility="direct")
    conv = wait_for(lambda: [c for c in alice.conversations() if c["last_status"]["uri"] == dm["uri"]])[0]
    assert conv["unread"] and [x["acct"] for x in conv["accounts"]] == [f"bob@{b.domain}"]

    alice.domain_block(b.domain)
    assert alice.account_relationships(bob_on_a["id"])[0]["domain_blocking"] is True
    assert post["uri"] not in [s["uri"] for s in alice.timeline_home()]
    assert post["uri"] not in [s["uri"] for s in alice.timeline_public()]
    # Followers on the blocked domain are removed, and the other server hears of it.
    assert alice.account_followers(alice.me()["id"]) == []
    wait_for(lambda: not bob.account_relationships(alice_on_b["id"])[0]["following"])

    # New mentions from there no longer notify.
    mention = bob.status_post(f"@alice@{a.domain} are you there?")
    wait_for(lambda: [s for s in requests.get(f"{a.base_url}/api/v1/timelines/public", timeout=10).json()
                      if s["uri"] == mention["uri"]])
    assert mention["uri"] not in [n["status"]["uri"] for n in alice.notifications(types=["mention"])]

    alice.domain_unblock(b.domain)
    assert alice.account_relationships(bob_on_a["id"])[0]["domain_blocking"] is False
    assert post["uri"] in [s["uri"] for s in alice.timeline_public()]

"""alice@A and bob@B federate through real instances driven by Mastodon.py."""

from __future__ import annotations

import pytest
from mastodon import MastodonNotFoundError

from tests.federation_e2e.conftest import wait_for


def remote(api, acct):
    found = api.account_search(acct, resolve=True)
    assert found, f"could not resolve {acct}"
    return found[0]


def test_follow_post_reply_boost_like(pair):
    a, b = pair
    alice, bob = a.api("alice"), b.api("bob")
    bob_on_a = remote(alice, f"bob@{b.domain}")
    assert bob_on_a["acct"] == f"bob@{b.domain}"
    alice.account_follow(bob_on_a["id"])
    wait_for(lambda: alice.account_relationships(bob_on_a["id"])[0]["following"])
    wait_for(lambda: [x for x in bob.account_followers(bob.me()["id"]) if x["acct"] == f"alice@{a.domain}"])

    post = bob.status_post("Hello partners! #launch")
    on_a = wait_for(lambda: [s for s in alice.timeline_home() if s["uri"] == post["uri"]])[0]
    assert on_a["account"]["acct"] == f"bob@{b.domain}" and "Hello partners" in on_a["content"]

    reply = alice.status_post(f"@bob@{b.domain} welcome!", in_reply_to_id=on_a["id"])
    reply_on_b = wait_for(lambda: bob.status_context(post["id"])["descendants"])[0]
    assert reply_on_b["uri"] == reply["uri"] and reply_on_b["in_reply_to_id"] == post["id"]
    assert [s["id"] for s in alice.status_context(reply["id"])["ancestors"]] == [on_a["id"]]
    wait_for(lambda: [n for n in bob.notifications() if n["type"] == "mention"])

    alice.status_favourite(on_a["id"])
    alice.status_reblog(on_a["id"])
    wait_for(lambda: {n["type"] for n in bob.notifications()} >= {"favourite", "reblog"})
    assert wait_for(lambda: bob.status(post["id"])["favourites_count"] == 1)

    bob.status_update(post["id"], "Hello partners, edited! #launch")
    wait_for(lambda: "edited" in alice.status(on_a["id"])["content"])
    bob.status_delete(post["id"])

    def gone():
        try:
            alice.status(on_a["id"])
        except MastodonNotFoundError:
            return True
        return False
    wait_for(gone)

    alice.account_unfollow(bob_on_a["id"])
    wait_for(lambda: not bob.account_followers(bob.me()["id"]))
    later = bob.status_post("after unfollow")
    import time
    time.sleep(1.5)
    assert later["uri"] not in [s["uri"] for s in alice.timeline_home()]


@pytest.mark.parametrize("visibility", ["private", "direct"])
def test_followers_only_and_direct_reach_only_their_audience(make_instance, visibility):
    from tests.federation_e2e.conftest import FED_ENV
    a = make_instance("a", env=dict(FED_ENV))
    b = make_instance("b", env=dict(FED_ENV))
    a.create_user("alice")
    a.create_user("amy")
    b.create_user("bob")
    alice, amy, bob = a.api("alice"), a.api("amy"), b.api("bob")
    bob_on_a = remote(alice, f"bob@{b.domain}")
    alice.account_follow(bob_on_a["id"])
    wait_for(lambda: alice.account_relationships(bob_on_a["id"])[0]["following"])
    text = "for followers" if visibility == "private" else f"@alice@{a.domain} just for you"
    post = bob.status_post(text, visibility=visibility)
    got = wait_for(lambda: [s for s in alice.timeline_home() if s["uri"] == post["uri"]] or
                   [n["status"] for n in alice.notifications() if n.get("status") and n["status"]["uri"] == post["uri"]])
    assert got[0]["visibility"] == visibility
    # amy does not follow bob: she never sees it
    assert post["uri"] not in [s["uri"] for s in amy.timeline_home()]
    status_id = got[0]["id"]
    with pytest.raises(MastodonNotFoundError):
        amy.status(status_id)


def test_locked_account_follow_needs_approval(pair):
    a, b = pair
    alice, bob = a.api("alice"), b.api("bob")
    bob.account_update_credentials(locked=True)
    bob_on_a = remote(alice, f"bob@{b.domain}")
    rel = alice.account_follow(bob_on_a["id"])
    assert rel["requested"] and not rel["following"]
    requester = wait_for(lambda: bob.follow_requests())[0]
    assert requester["acct"] == f"alice@{a.domain}"
    bob.follow_request_authorize(requester["id"])
    wait_for(lambda: alice.account_relationships(bob_on_a["id"])[0]["following"])


def test_delivery_survives_receiver_downtime(pair):
    a, b = pair
    alice, bob = a.api("alice"), b.api("bob")
    bob_on_a = remote(alice, f"bob@{b.domain}")
    alice.account_follow(bob_on_a["id"])
    wait_for(lambda: alice.account_relationships(bob_on_a["id"])[0]["following"])
    a.stop()
    post = bob.status_post("posted while A was down")
    import time
    time.sleep(1.0)
    queue = b.cli("admin", "deliveries").stdout
    assert a.domain in queue
    a.start()
    alice = a.api("alice")
    wait_for(lambda: [s for s in alice.timeline_home() if s["uri"] == post["uri"]], timeout=30)


def test_polls_federate_with_votes(pair):
    a, b = pair
    alice, bob = a.api("alice"), b.api("bob")
    bob_on_a = remote(alice, f"bob@{b.domain}")
    alice.account_follow(bob_on_a["id"])
    wait_for(lambda: alice.account_relationships(bob_on_a["id"])[0]["following"])
    post = bob.status_post("Lunch?", poll=bob.make_poll(["pizza", "sushi"], expires_in=3600))
    on_a = wait_for(lambda: [s for s in alice.timeline_home() if s["uri"] == post["uri"]])[0]
    assert [o["title"] for o in on_a["poll"]["options"]] == ["pizza", "sushi"]
    alice.poll_vote(on_a["poll"]["id"], [1])
    # The vote travels to B as a Create(Note) named after the option and is counted there.
    counted = wait_for(lambda: bob.poll(post["poll"]["id"])["votes_count"] == 1 and bob.poll(post["poll"]["id"]))
    assert [o["votes_count"] for o in counted["options"]] == [0, 1]
    from tests.federation_e2e.test_boundary import signed_get
    assert signed_get(a, post["uri"]).json()["type"] == "Question"

"""Groups across instances (FEP-1b12): two Crosstalk partners and an outsider, driven by Mastodon.py,
and a forum-style peer written from the FEP (tests/federation_e2e/fep1b12_peer.py)."""

from __future__ import annotations

import json

import pytest
import requests

from tests.conftest import Instance
from tests.federation_e2e.conftest import FED_ENV, wait_for
from tests.federation_e2e.fep1b12_peer import ForumPeer
from tests.federation_e2e.test_two_instances import remote


@pytest.fixture(scope="module")
def trio(tmp_path_factory):
    root = tmp_path_factory.mktemp("groups-fed")
    instances = [Instance(root / name, dict(FED_ENV)) for name in ("a", "b", "c")]
    try:
        for inst in instances:
            inst.start()
        a, b, c = instances
        for inst, users in ((a, ("alice", "amy")), (b, ("bob", "bea")), (c, ("carol",))):
            for user in users:
                inst.create_user(user)
        yield a, b, c
    finally:
        for inst in instances:
            inst.dispose()


def _home_boost_of(api, uri):
    return [s for s in api.timeline_home(limit=40) if s["reblog"] and s["reblog"]["uri"] == uri]


def test_partner_member_joins_posts_and_moderator_deletion_reaches_members(trio):
    a, b, _ = trio
    a.cli("admin", "group", "create", "falcon", "--owner", "alice", "--federation", "open")
    alice, amy, bob, bea = a.api("alice"), a.api("amy"), b.api("bob"), b.api("bea")
    group_on_a = alice.account_lookup("falcon")
    amy.account_follow(group_on_a["id"])
    for api in (bob, bea):  # both join from B, through the account view any Mastodon app has
        group_on_b = remote(api, f"falcon@{a.domain}")
        assert group_on_b["group"] is True
        api.account_follow(group_on_b["id"])
        wait_for(lambda api=api, g=group_on_b: api.account_relationships(g["id"])[0]["following"])

    # A member on the partner instance posts to the group; every member on both instances gets it.
    post = bob.status_post(f"@falcon@{a.domain} kick-off notes are in the wiki")
    for api in (alice, amy):
        wait_for(lambda api=api: _home_boost_of(api, post["uri"]), timeout=20)
    wait_for(lambda: _home_boost_of(bea, post["uri"]), timeout=20)
    # What A sent: the wrapped Create and the plain Announce, both from the group, the post with audience.
    sent = [json.loads(bytes(r[0])) for r in a.sql("SELECT body FROM outbox_activities")]
    announces = [x for x in sent if x["type"] == "Announce" and x["actor"] == group_on_a["uri"]]
    wrapped = [x for x in announces if isinstance(x["object"], dict) and x["object"].get("type") == "Create"]
    assert wrapped and wrapped[0]["object"]["object"]["id"] == post["uri"]
    assert any(x["object"] == post["uri"] or (isinstance(x["object"], dict) and x["object"].get("id") == post["uri"])
               for x in announces)

    # A reply threads under the post without flooding home timelines.
    on_a = alice.status(alice.search(post["uri"], resolve=True)["statuses"][0]["id"])
    reply = alice.status_post(f"@bob@{b.domain} thanks!", in_reply_to_id=on_a["id"])
    wait_for(lambda: [d for d in bob.status_context(post["id"])["descendants"] if d["uri"] == reply["uri"]],
             timeout=20)
    assert not _home_boost_of(bea, reply["uri"])
    assert not _home_boost_of(amy, reply["uri"])

    # A moderator's post, removed by a moderator: the group's Announce{Delete} reaches B.
    mod_post = amy.status_post("@falcon off-topic, sorry")
    wait_for(lambda: _home_boost_of(bea, mod_post["uri"]), timeout=20)
    r = requests.delete(f"{a.base_url}/api/v1/groups/{group_on_a['id']}/statuses/{mod_post['id']}",
                        headers={"Authorization": f"Bearer {a.token('alice')}"}, timeout=10)
    assert r.status_code == 200, r.text
    wait_for(lambda: b.sql("SELECT deleted_at FROM statuses WHERE uri = ?", (mod_post["uri"],))[0][0] is not None,
             timeout=20)
    assert not _home_boost_of(bea, mod_post["uri"])


def test_members_only_group_with_a_partner_never_reaches_the_outsider(trio):
    a, b, c = trio
    a.cli("admin", "group", "create", "payroll", "--owner", "alice", "--kind", "members_only",
          "--federation", "partners", "--partner", b.domain)
    alice, bob, carol = a.api("alice"), b.api("bob"), c.api("carol")
    group_id = alice.account_lookup("payroll")["id"]
    # Approval: bob asks from B, alice approves.
    group_on_b = remote(bob, f"payroll@{a.domain}")
    assert group_on_b["locked"] is True
    bob.account_follow(group_on_b["id"])
    pending = wait_for(lambda: requests.get(f"{a.base_url}/api/v1/groups/{group_id}/membership_requests",
                                            headers={"Authorization": f"Bearer {a.token('alice')}"},
                                            timeout=10).json())
    assert pending[0]["acct"] == f"bob@{b.domain}"
    a.cli("admin", "group", "approve", "payroll", f"bob@{b.domain}")
    wait_for(lambda: bob.account_relationships(group_on_b["id"])[0]["following"], timeout=20)
    # carol on C is not on a partner instance: her join is refused and logged at the boundary.
    group_on_c = remote(carol, f"payroll@{a.domain}")
    carol.account_follow(group_on_c["id"])
    wait_for(lambda: a.sql("SELECT count(*) FROM boundary_log WHERE event = 'group' AND outcome = 'rejected'"
                           " AND domain = ?", (c.domain,))[0][0] > 0, timeout=20)
    wait_for(lambda: not carol.account_relationships(group_on_c["id"])[0]["requested"], timeout=20)

    post = alice.status_post("@payroll salary bands for 2027")
    assert post["visibility"] == "direct"
    shared = wait_for(lambda: _home_boost_of(bob, post["uri"]), timeout=20)
    assert shared[0]["visibility"] == "private"
    assert bob.status(shared[0]["reblog"]["id"])["content"]
    # The outsider's instance never got it: not through the API, not in its database.
    assert not c.sql("SELECT count(*) FROM statuses WHERE uri = ?", (post["uri"],))[0][0]
    assert not carol.search(post["uri"], resolve=True)["statuses"]
    # A non-member on the partner instance does not see it either.
    bea = b.api("bea")
    assert requests.get(f"{b.base_url}/api/v1/statuses/{shared[0]['reblog']['id']}",
                        headers={"Authorization": f"Bearer {b.token('bea')}"}, timeout=10).status_code == 404
    assert not _home_boost_of(bea, post["uri"])


def test_local_only_group_is_not_served_outside(trio):
    a, b, _ = trio
    a.cli("admin", "group", "create", "canteen", "--owner", "alice")
    assert requests.get(f"{a.base_url}/.well-known/webfinger?resource=acct:canteen@{a.domain}",
                        timeout=10).status_code == 404
    assert requests.get(f"{a.base_url}/users/canteen", headers={"Accept": "application/activity+json"},
                        timeout=10).status_code == 404
    assert not b.api("bob").account_search(f"canteen@{a.domain}", resolve=True)


def test_forum_peer_announces_are_unwrapped_and_our_group_announces_to_it(trio):
    a, _, _ = trio
    peer = ForumPeer()
    try:
        alice = a.api("alice")
        # Our user joins the peer's community (a Group actor), the peer accepts.
        community = remote(alice, f"forum@{peer.host}")
        assert community["group"] is True
        alice.account_follow(community["id"])
        wait_for(lambda: peer.accept_follows() == 1)
        wait_for(lambda: alice.account_relationships(community["id"])[0]["following"])
        page = peer.publish(1, "Release planning", "<p>Which features go in 2.0?</p>")
        boost = wait_for(lambda: _home_boost_of(alice, page["id"]), timeout=20)[0]
        assert boost["account"]["id"] == community["id"]
        assert len(_home_boost_of(alice, page["id"])) == 1  # both forms, one boost

        # The peer's member joins our group, and receives what the group announces: the wrapped Create.
        a.cli("admin", "group", "create", "forumbridge", "--owner", "alice", "--federation", "open")
        group_uri = f"{a.base_url}/users/forumbridge"
        peer.join(group_uri)
        group_id = alice.account_lookup("forumbridge")["id"]
        wait_for(lambda: alice.account(group_id)["followers_count"] == 2)
        post = alice.status_post("@forumbridge hello forum people")
        announces = wait_for(lambda: peer.announces_to(peer.member), timeout=20)
        wrapped = wait_for(lambda: [x for x in peer.announces_to(peer.member)
                                    if isinstance(x["object"], dict) and x["object"].get("type") == "Create"])
        assert wrapped[0]["actor"] == group_uri
        assert wrapped[0]["object"]["object"]["audience"] == group_uri
        assert wrapped[0]["object"]["object"]["id"] == post["uri"]
        assert announces
        # A remote Announce claiming to come from our group is refused.
        forged = {"@context": "https://www.w3.org/ns/activitystreams", "type": "Announce",
                  "id": f"{peer.base}/forged/1", "actor": group_uri, "object": page["id"], "to": []}
        r = peer.post(peer.member, f"{a.base_url}/inbox", forged)
        assert r.status_code >= 400
    finally:
        peer.close()


def test_emoji_reactions_locally_and_across_instances(trio):
    a, b, _ = trio
    alice, bob = a.api("alice"), b.api("bob")
    post = bob.status_post("Shipped the release!")
    on_a = alice.search(post["uri"], resolve=True)["statuses"][0]

    def call(inst, name, method, path):
        return requests.request(method, inst.base_url + path, timeout=10,
                                headers={"Authorization": f"Bearer {inst.token(name)}"})

    assert call(a, "alice", "PUT", f"/api/v1/pleroma/statuses/{on_a['id']}/reactions/%F0%9F%8E%89").status_code == 200
    assert call(a, "amy", "PUT", f"/api/v1/pleroma/statuses/{on_a['id']}/reactions/%F0%9F%8E%89").status_code == 200
    assert call(a, "amy", "PUT", f"/api/v1/pleroma/statuses/{on_a['id']}/reactions/hello").status_code == 422
    shown = call(a, "alice", "GET", f"/api/v1/pleroma/statuses/{on_a['id']}/reactions").json()
    assert [(r["name"], r["count"], r["me"]) for r in shown] == [("\U0001f389", 2, True)]
    # EmojiReact reaches the author's instance: a reaction there, and a notification for bob.
    on_b = wait_for(lambda: call(b, "bob", "GET", f"/api/v1/pleroma/statuses/{post['id']}/reactions").json(),
                    timeout=20)
    wait_for(lambda: call(b, "bob", "GET", f"/api/v1/pleroma/statuses/{post['id']}/reactions").json()[0]["count"]
             == 2, timeout=20)
    assert on_b[0]["name"] == "\U0001f389"
    kinds = wait_for(lambda: [n for n in bob.notifications() if n["type"] == "pleroma:emoji_reaction"], timeout=20)
    assert kinds[0]["status"]["id"] == post["id"]
    # A plain favourite stays a favourite; taking the reaction back reaches B too.
    assert bob.status(post["id"])["favourites_count"] == 0
    assert call(a, "amy", "DELETE", f"/api/v1/pleroma/statuses/{on_a['id']}/reactions/%F0%9F%8E%89").status_code == 200
    wait_for(lambda: call(b, "bob", "GET", f"/api/v1/pleroma/statuses/{post['id']}/reactions").json()[0]["count"]
             == 1, timeout=20)


def test_relayed_likes_and_misskey_reactions_are_applied(trio):
    a, b, _ = trio
    peer = ForumPeer()
    try:
        alice = a.api("alice")
        community = remote(alice, f"forum@{peer.host}")
        alice.account_follow(community["id"])
        wait_for(lambda: peer.accept_follows() == 1)
        wait_for(lambda: alice.account_relationships(community["id"])[0]["following"])
        page = peer.publish(7, "Vote on the roadmap", "<p>Upvote what matters</p>")
        on_a = wait_for(lambda: _home_boost_of(alice, page["id"]), timeout=20)[0]["reblog"]

        def reactions(status_id):
            r = requests.get(f"{a.base_url}/api/v1/pleroma/statuses/{status_id}/reactions", timeout=10,
                             headers={"Authorization": f"Bearer {a.token('alice')}"})
            return [(x["name"], x["count"]) for x in r.json()]

        # The community relays its member's upvote (Announce{Like}): a favourite of the post here.
        upvote = peer.like(1, page["id"])
        peer.relay(1, upvote)
        wait_for(lambda: alice.status(on_a["id"])["favourites_count"] == 1)
        # ... and a Like with an emoji, Misskey-style: a reaction, not a second favourite.
        cheer = peer.like(2, page["id"], "\U0001f44d")
        peer.relay(2, cheer)
        wait_for(lambda: reactions(on_a["id"]) == [("\U0001f44d", 1)])
        assert alice.status(on_a["id"])["favourites_count"] == 1
        # Undo of each, relayed the same way.
        peer.relay(3, peer.undo(1, upvote))
        peer.relay(4, peer.undo(2, cheer))
        wait_for(lambda: alice.status(on_a["id"])["favourites_count"] == 0 and reactions(on_a["id"]) == [])
        # A relayed Like by someone on another server is checked at its source: B has no such activity.
        bob_uri = f"{b.base_url}/users/bob"
        forged = {"@context": "https://www.w3.org/ns/activitystreams", "type": "Like",
                  "id": f"{b.base_url}/users/bob#likes/forged", "actor": bob_uri, "object": page["id"]}
        peer.relay(5, forged)
        peer.relay(6, peer.like(6, page["id"]))  # a real one after it, to know the forged one was handled
        wait_for(lambda: alice.status(on_a["id"])["favourites_count"] == 1)
        assert [x["acct"] for x in alice.status_favourited_by(on_a["id"])] == [f"lemmy_user@{peer.host}"]

        # A Misskey-style Like with content sent straight to our post is a reaction with its notification;
        # its Undo takes it back. A plain favourite stays a favourite.
        mine = alice.status_post("Roadmap is out")
        like = peer.like(8, mine["uri"], "\U0001f389")
        assert peer.post(peer.member, f"{a.base_url}/inbox", like).status_code in (200, 202)
        wait_for(lambda: reactions(mine["id"]) == [("\U0001f389", 1)])
        assert alice.status(mine["id"])["favourites_count"] == 0
        wait_for(lambda: [n for n in alice.notifications() if n["type"] == "pleroma:emoji_reaction"
                          and n["status"]["id"] == mine["id"]])
        assert peer.post(peer.member, f"{a.base_url}/inbox", peer.undo(8, like)).status_code in (200, 202)
        wait_for(lambda: reactions(mine["id"]) == [])
    finally:
        peer.close()

"""The core client API driven end to end by Mastodon.py against a real instance."""

from __future__ import annotations

import pytest
import requests
from mastodon import Mastodon, MastodonIllegalArgumentError, MastodonNotFoundError, MastodonUnauthorizedError

from tests.conftest import authorize_in_browser
from tests.server.shared_instance import wait_for

PASSWORD = "correct horse battery"


def login_with_code(instance, username: str) -> Mastodon:
    client_id, client_secret = Mastodon.create_app("e2e", api_base_url=instance.base_url,
                                                   scopes=["read", "write", "follow", "push"])
    api = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=instance.base_url)
    url = api.auth_request_url(scopes=["read", "write", "follow", "push"])
    code = authorize_in_browser(instance.base_url, url, username, PASSWORD)
    api.log_in(code=code, scopes=["read", "write", "follow", "push"])
    return api


@pytest.fixture
def users(instance):
    for name in ("alice", "bob", "carol"):
        instance.create_user(name, PASSWORD)
    return {name: login_with_code(instance, name) for name in ("alice", "bob", "carol")}


def test_authorization_code_and_password_login(instance):
    instance.create_user("dora", PASSWORD)
    api = login_with_code(instance, "dora")
    me = api.account_verify_credentials()
    assert me["username"] == "dora" and me["acct"] == "dora"
    assert "source" in me and me["source"]["privacy"] == "public"

    client_id, client_secret = Mastodon.create_app("pw", api_base_url=instance.base_url)
    pw = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=instance.base_url)
    pw.log_in("dora@example.test", PASSWORD)
    assert pw.account_verify_credentials()["username"] == "dora"
    with pytest.raises(MastodonIllegalArgumentError, match="invalid_grant"):
        pw.log_in("dora@example.test", "wrong password")


def test_post_reply_context_and_visibility(instance, users):
    alice, bob, carol = users["alice"], users["bob"], users["carol"]
    bob_id = bob.me()["id"]
    alice.account_follow(bob_id)

    post = bob.status_post("Hello #Crosstalk world, see https://example.org/page.")
    assert '<a href="http://' in post["content"] and "hashtag" in post["content"]
    assert post["tags"][0]["name"] == "crosstalk"
    reply = alice.status_post("@bob welcome!", in_reply_to_id=post["id"])
    assert reply["in_reply_to_id"] == post["id"]
    assert reply["mentions"][0]["acct"] == "bob"

    ctx = bob.status_context(post["id"])
    assert [s["id"] for s in ctx["descendants"]] == [reply["id"]]
    assert [s["id"] for s in alice.status_context(reply["id"])["ancestors"]] == [post["id"]]

    private = bob.status_post("followers only", visibility="private")
    direct = bob.status_post("@carol secret", visibility="direct")
    home_ids = [s["id"] for s in alice.timeline_home()]
    assert private["id"] in home_ids and post["id"] in home_ids
    assert direct["id"] not in home_ids
    with pytest.raises(MastodonNotFoundError):
        carol.status(private["id"])
    assert carol.status(direct["id"])["visibility"] == "direct"
    with pytest.raises(MastodonNotFoundError):
        alice.status(direct["id"])

    public_ids = [s["id"] for s in carol.timeline_public(local=True)]
    assert post["id"] in public_ids and private["id"] not in public_ids
    assert any(n["type"] == "mention" for n in bob.notifications())
    assert [s["id"] for s in carol.timeline_hashtag("crosstalk")] == [post["id"]]


def test_a_thread_shows_each_viewer_what_they_may_see(instance, users):
    """Opening a thread decides the opened status's visibility and its thread's in one batch: a
    followers-only reply is in the thread of its author's followers and of those it mentions, for
    nobody else, and opening it is a 404 for them."""
    alice, bob, carol = users["alice"], users["bob"], users["carol"]
    post = bob.status_post("A public question")
    private = alice.status_post("@bob an answer for my followers", in_reply_to_id=post["id"], visibility="private")
    answer = bob.status_post("@alice thanks", in_reply_to_id=private["id"])

    assert [s["id"] for s in bob.status_context(answer["id"])["ancestors"]] == [post["id"], private["id"]]
    assert [s["id"] for s in bob.status_context(post["id"])["descendants"]] == [private["id"], answer["id"]]
    assert [s["id"] for s in carol.status_context(answer["id"])["ancestors"]] == [post["id"]]
    assert carol.status_context(post["id"])["descendants"] == []  # nothing below a reply she may not see
    with pytest.raises(MastodonNotFoundError):
        carol.status_context(private["id"])
    anonymous = requests.get(f"{instance.base_url}/api/v1/statuses/{private['id']}/context", timeout=10)
    assert anonymous.status_code == 404 and "error" in anonymous.json()
    assert requests.get(f"{instance.base_url}/api/v1/statuses/999999999/context", timeout=10).status_code == 404

    carol.account_follow(alice.me()["id"])
    assert [s["id"] for s in carol.status_context(answer["id"])["ancestors"]] == [post["id"], private["id"]]
    assert [s["id"] for s in carol.status_context(private["id"])["descendants"]] == [answer["id"]]

    bob.status_delete(answer["id"])  # a thread read with the status it was opened at: gone is gone
    with pytest.raises(MastodonNotFoundError):
        bob.status_context(answer["id"])
    assert [s["id"] for s in bob.status_context(post["id"])["descendants"]] == [private["id"]]
    assert [s["id"] for s in carol.status_context(private["id"])["ancestors"]] == [post["id"]]


def test_follow_locked_favourite_boost_bookmark_edit_delete(instance, users):
    alice, bob = users["alice"], users["bob"]
    alice_id, bob_id = alice.me()["id"], bob.me()["id"]
    bob.account_update_credentials(locked=True, fields=[("Department", "Engineering")])
    rel = alice.account_follow(bob_id)
    assert rel["requested"] and not rel["following"]
    assert [a["id"] for a in bob.follow_requests()] == [alice_id]
    assert bob.notifications()[0]["type"] == "follow_request"
    bob.follow_request_authorize(alice_id)
    assert alice.account_relationships(bob_id)[0]["following"]

    post = bob.status_post("favourite me")
    alice.status_favourite(post["id"])
    boosted = alice.status_reblog(post["id"])
    assert boosted["reblog"]["id"] == post["id"]
    alice.status_bookmark(post["id"])
    assert [s["id"] for s in alice.bookmarks()] == [post["id"]]
    got = alice.status(post["id"])
    assert got["favourited"] and got["reblogged"] and got["bookmarked"]
    assert got["favourites_count"] == 1 and got["reblogs_count"] == 1
    types = [n["type"] for n in bob.notifications()]
    assert "favourite" in types and "reblog" in types
    assert [a["id"] for a in bob.status_favourited_by(post["id"])] == [alice_id]

    edited = bob.status_update(post["id"], "favourite me, edited")
    assert edited["edited_at"] and "edited" in edited["content"]
    assert len(bob.status_history(post["id"])) == 2
    assert bob.status_source(post["id"])["text"] == "favourite me, edited"
    assert any(n["type"] == "update" for n in alice.notifications())

    deleted = bob.status_delete(post["id"])
    assert deleted["text"] == "favourite me, edited"
    with pytest.raises(MastodonNotFoundError):
        alice.status(post["id"])
    alice.account_unfollow(bob_id)
    assert not alice.account_relationships(bob_id)[0]["following"]


def test_pagination_and_notifications_filters(instance, users):
    alice, bob = users["alice"], users["bob"]
    alice.account_follow(bob.me()["id"])
    ids = [bob.status_post(f"post {i}")["id"] for i in range(45)]
    # Feeds are filled after the post's commit (from its event), as in Mastodon: wait for the last one.
    first = wait_for(lambda: (page := alice.timeline_home(limit=20)) and page[0]["id"] == ids[-1] and page)
    assert [s["id"] for s in first] == ids[::-1][:20]
    second = alice.fetch_next(first)
    assert [s["id"] for s in second] == ids[::-1][20:40]
    newer = alice.timeline_home(min_id=ids[10], limit=5)
    assert [s["id"] for s in newer] == ids[11:16][::-1]
    assert len(alice.timeline_home(limit=100)) == 40

    for s in ids[:3]:
        alice.status_favourite(s)
    alice.account_follow(bob.me()["id"])
    favs = bob.notifications(types=["favourite"])
    assert len(favs) == 3 and {n["type"] for n in favs} == {"favourite"}
    assert all(n["type"] != "favourite" for n in bob.notifications(exclude_types=["favourite"]))
    one = bob.notifications(id=favs[0]["id"])
    assert one["id"] == favs[0]["id"]
    bob.notifications_dismiss(favs[0]["id"])
    assert len(bob.notifications(types=["favourite"])) == 2
    bob.notifications_clear()
    assert bob.notifications() == []


def test_blocks_and_mutes_hide_posts(instance, users):
    alice, bob, carol = users["alice"], users["bob"], users["carol"]
    bob_id, carol_id = bob.me()["id"], carol.me()["id"]
    alice.account_follow(bob_id)
    alice.account_follow(carol_id)
    b = bob.status_post("from bob")
    c = carol.status_post("from carol")
    alice.account_mute(carol_id)
    home = [s["id"] for s in alice.timeline_home()]
    assert b["id"] in home and c["id"] not in home
    assert [s["id"] for s in alice.account_statuses(bob_id)] == [b["id"]]
    alice.account_block(bob_id)
    assert not alice.account_relationships(bob_id)[0]["following"]
    assert b["id"] not in [s["id"] for s in alice.timeline_public()]
    assert alice.account_statuses(bob_id) == []  # a profile shows nothing either way across a block
    assert bob.account_statuses(alice.me()["id"]) == []
    with pytest.raises(MastodonNotFoundError):
        bob.status(alice.status_post("hidden from bob")["id"])
    assert [a["id"] for a in alice.blocks()] == [bob_id]
    assert [a["id"] for a in alice.mutes()] == [carol_id]


def test_errors_scopes_and_conventions(instance, users):
    alice = users["alice"]
    base = instance.base_url
    r = requests.get(f"{base}/api/v1/does/not/exist")
    assert r.status_code == 404 and r.json() == {"error": "Record not found"}
    r = requests.get(f"{base}/api/v1/timelines/home")
    assert r.status_code == 401 and "error" in r.json()
    r = requests.get(f"{base}/api/v1/timelines/home", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    read_only = instance.token("alice", "read")
    r = requests.post(f"{base}/api/v1/statuses", data={"status": "x"}, headers={"Authorization": f"Bearer {read_only}"})
    assert r.status_code == 403 and r.json()["error"]
    token = instance.token("alice")
    auth = {"Authorization": f"Bearer {token}"}
    r = requests.post(f"{base}/api/v1/statuses", json={"status": "x" * 6000}, headers=auth)
    assert r.status_code == 422 and "limit" in r.json()["error"]
    r = requests.post(f"{base}/api/v1/statuses", data=b"{not json", headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 400
    r = requests.post(f"{base}/api/v1/statuses", json={"status": "   "}, headers=auth)
    assert r.status_code == 422
    r = requests.post(f"{base}/api/v1/statuses", json={"status": "hi", "in_reply_to_id": "99999"}, headers=auth)
    assert r.status_code == 404
    r = requests.get(f"{base}/api/v1/statuses/abc", headers=auth)
    assert r.status_code == 404
    r = requests.get(f"{base}/api/v1/accounts/{alice.me()['id']}/", headers={**auth, "Origin": "https://app.example"})
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == "*" and "Link" in r.headers["Access-Control-Expose-Headers"]
    assert "X-RateLimit-Remaining" in r.headers
    r = requests.options(f"{base}/api/v1/statuses", headers={"Origin": "https://app.example",
                                                             "Access-Control-Request-Method": "POST"})
    assert r.status_code == 204
    # Idempotency-Key returns the same status
    first = requests.post(f"{base}/api/v1/statuses", json={"status": "once"}, headers={**auth, "Idempotency-Key": "k1"})
    again = requests.post(f"{base}/api/v1/statuses", json={"status": "once"}, headers={**auth, "Idempotency-Key": "k1"})
    assert first.json()["id"] == again.json()["id"]
    created = first.json()["created_at"]
    assert created.endswith("Z") and len(created) == 24
    # Revoked tokens stop working
    with pytest.raises(MastodonUnauthorizedError):
        Mastodon(access_token="garbage", api_base_url=base).account_verify_credentials()


def test_rate_limit(make_instance):
    inst = make_instance("limited", env={"CROSSTALK_RATE_LIMIT_ENABLED": "true", "CROSSTALK_RATE_LIMIT_ADDRESS_REQUESTS": "5"})
    first = requests.get(f"{inst.base_url}/api/v1/instance")
    remaining = int(first.headers["X-RateLimit-Remaining"])
    assert first.headers["X-RateLimit-Limit"] == "5" and remaining < 5
    statuses = [requests.get(f"{inst.base_url}/api/v1/instance").status_code for _ in range(remaining + 1)]
    assert statuses == [200] * remaining + [429]
    r = requests.get(f"{inst.base_url}/api/v1/instance")
    assert r.json()["error"] and r.headers["X-RateLimit-Remaining"] == "0"


def test_instance_figures_count_local_posts_as_they_are_made_and_deleted(instance, users):
    alice, bob, carol = users["alice"], users["bob"], users["carol"]
    first = alice.status_post("First of two")
    second = alice.status_post("Second of two")
    bob.status_post("Bob's own", visibility="unlisted")
    bob.status_reblog(first["id"])
    carol.status_post("@alice just between us", visibility="direct")
    bob.status_post("@alice a reply", in_reply_to_id=first["id"])
    alice.status_delete(second["id"])
    bob.status_unreblog(first["id"])

    stats = requests.get(f"{instance.base_url}/api/v1/instance", timeout=10).json()["stats"]
    assert stats["user_count"] == 3
    assert stats["status_count"] == 4  # alice's first, bob's two, carol's direct message
    usage = requests.get(f"{instance.base_url}/nodeinfo/2.1", timeout=10).json()["usage"]
    assert usage["localPosts"] == 4 and usage["users"]["total"] == 3

    alice.status_post("Another one")
    assert requests.get(f"{instance.base_url}/api/v1/instance", timeout=10).json()["stats"]["status_count"] == 5


def test_ones_own_post_and_boost_are_on_ones_home_timeline_at_once(make_instance):
    """The author's own feed gets a local post (and boost) in the post's transaction: the next home
    read shows it even before the fan-out, which runs from the post's event after the commit. Event
    dispatch is paused here, so only that transaction can have put it there; followers get it from
    the fan-out."""
    inst = make_instance("a", env={"CROSSTALK_JOBS_PAUSED": "outbox"})
    inst.create_users(["alice", "bob"])
    alice, bob = inst.api("alice"), inst.api("bob")
    bob.account_follow(alice.me()["id"])
    post = alice.status_post("mine, at once")
    assert [s["id"] for s in alice.timeline_home()] == [post["id"]]
    boost = bob.status_reblog(post["id"])
    assert [s["id"] for s in bob.timeline_home()] == [boost["id"]]
    assert alice.timeline_home()[0]["id"] == post["id"]  # bob's boost reaches her only by fan-out

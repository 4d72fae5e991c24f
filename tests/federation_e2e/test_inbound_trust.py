"""What one server may make us believe about another's posts, and clean refusals in the inbox."""

from __future__ import annotations

import json

from tests.federation_e2e.conftest import FED_ENV, wait_for
from tests.federation_e2e.gts_peer import PUBLIC, GtsPeer
from tests.federation_e2e.test_two_instances import remote

AS = "https://www.w3.org/ns/activitystreams"


def note(author, n: int, content: str, **extra) -> dict:
    return {"id": f"{author.uri}/statuses/{n}", "type": "Note", "attributedTo": author.uri, "content": content,
            "to": [PUBLIC], "cc": [], "published": "2026-01-01T10:00:00Z", **extra}


def stored_contents(inst) -> list[str]:
    return [row[0] for row in inst.sql("SELECT content FROM statuses")]


def test_a_third_server_cannot_plant_posts_attributed_to_another(make_instance):
    """mallory's server S is followed here; erin lives on B. S embeds notes "by erin" in boosts and in a
    thread's replies: each is believed only as B serves it."""
    s_peer, b_peer = GtsPeer(usernames=("mallory",)), GtsPeer(usernames=("erin",))
    try:
        a = make_instance("a", env=dict(FED_ENV))
        a.create_user("alice")
        alice = a.api("alice")
        mallory, erin = s_peer.users["mallory"], b_peer.users["erin"]
        inbox = f"{a.base_url}/users/alice/inbox"
        on_a = remote(alice, f"mallory@{s_peer.host}")
        alice.account_follow(on_a["id"])
        follow = wait_for(lambda: s_peer.activities("Follow"))[0]
        accept = {"@context": AS, "id": f"{mallory.uri}/accepts/1", "type": "Accept", "actor": mallory.uri,
                  "object": follow}
        assert s_peer.post(mallory, inbox, accept).status_code == 202
        wait_for(lambda: alice.account_relationships(on_a["id"])[0]["following"])

        def announce(n: int, obj: dict) -> None:
            activity = {"@context": AS, "id": f"{mallory.uri}/statuses/{n}/activity", "type": "Announce",
                        "actor": mallory.uri, "object": obj, "to": [PUBLIC], "cc": [f"{mallory.uri}/followers"]}
            assert s_peer.post(mallory, inbox, activity).status_code == 202

        # A boost of a note erin never wrote (B answers 404 for it), and a boost of a real one with its
        # words changed.
        announce(1, note(erin, 666, "<p>planted by mallory</p>"))
        b_peer.documents["/users/erin/statuses/1"] = {"@context": AS, **note(erin, 1, "<p>what erin wrote</p>")}
        announce(2, note(erin, 1, "<p>words put in erin's mouth</p>"))
        boosted = wait_for(lambda: [s for s in alice.timeline_home()
                                    if s["reblog"] and s["reblog"]["uri"] == f"{erin.uri}/statuses/1"])
        assert "what erin wrote" in boosted[0]["reblog"]["content"]

        # A thread of mallory's whose replies collection embeds a note "by erin" and one of mallory's own.
        root = note(mallory, 10, "<p>thread root</p>")
        root["replies"] = {"id": f"{root['id']}/replies", "type": "Collection", "first": {
            "type": "CollectionPage", "partOf": f"{root['id']}/replies", "items": [
                note(erin, 667, "<p>planted in a thread</p>", inReplyTo=root["id"]),
                note(mallory, 11, "<p>mallory's own reply</p>", inReplyTo=root["id"])]}}
        s_peer.documents["/users/mallory/statuses/10"] = {"@context": AS, **root}
        create = {"@context": AS, "id": f"{root['id']}/activity", "type": "Create", "actor": mallory.uri,
                  "object": root, "to": [PUBLIC], "cc": [f"{mallory.uri}/followers"]}
        assert s_peer.post(mallory, inbox, create).status_code == 202
        here = wait_for(lambda: [s for s in alice.timeline_home() if s["uri"] == root["id"]])[0]
        descendants = wait_for(lambda: alice.status_context(here["id"])["descendants"], timeout=20)
        assert [d["uri"] for d in descendants] == [f"{mallory.uri}/statuses/11"]
        assert "/users/erin/statuses/667" in b_peer.requested  # asked where erin's posts live

        contents = " ".join(stored_contents(a))
        assert "planted" not in contents and "words put in" not in contents
        assert {"/users/erin/statuses/666", "/users/erin/statuses/1"} <= set(b_peer.requested)
    finally:
        s_peer.close()
        b_peer.close()


def test_like_of_a_post_the_liker_may_not_see_is_refused_cleanly(make_instance):
    peer = GtsPeer(usernames=("bob",))
    try:
        a = make_instance("a", env=dict(FED_ENV))
        a.create_user("alice")
        alice = a.api("alice")
        private = alice.status_post("followers only", visibility="private")
        bob = peer.users["bob"]
        like = {"@context": AS, "id": f"{bob.uri}/liked/1", "type": "Like", "actor": bob.uri, "object": private["uri"]}
        assert peer.post(bob, f"{a.base_url}/users/alice/inbox", like).status_code == 202

        def refusals() -> list[dict]:
            out = a.cli("admin", "boundary-log", "--domain", peer.host, "--json").stdout
            return [e for e in map(json.loads, out.splitlines())
                    if e["activity_type"] == "Like" and e["outcome"] == "rejected"]
        assert "may not see" in wait_for(refusals)[0]["reason"]
        assert alice.status(private["id"])["favourites_count"] == 0
        assert "Traceback" not in a.log_path.read_text(), a.log()
    finally:
        peer.close()

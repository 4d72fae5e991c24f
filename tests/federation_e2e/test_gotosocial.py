"""Federation with a peer that behaves as GoToSocial documents and does (tests/federation_e2e/gts_peer.py):
key stubs at the key URL, a WebFinger check of every signer, usernames without ':', signed fetches
required. Driven against a real instance whose domain carries a port."""

from __future__ import annotations

import json

import pytest
import requests

from tests.federation_e2e.conftest import FED_ENV, wait_for
from tests.federation_e2e.gts_peer import AS2, GTS_NAMESTRING, GtsPeer
from tests.federation_e2e.test_two_instances import remote


@pytest.fixture
def gts():
    peer = GtsPeer(usernames=("bob", "carol"))
    yield peer
    peer.close()


def boundary_log(inst, domain: str) -> list[dict]:
    out = inst.cli("admin", "boundary-log", "--domain", domain, "--json").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_instance_actor_is_found_through_webfinger_as_peers_expect(make_instance):
    a = make_instance("a", env=dict(FED_ENV))
    actor = requests.get(f"{a.base_url}/actor", headers={"Accept": AS2}, timeout=10).json()
    name = actor["preferredUsername"]
    assert ":" not in name  # GoToSocial cannot hold ':' in a username, and our domain carries a port
    webfinger = f"{a.base_url}/.well-known/webfinger"
    # Mastodon's form for an instance actor, acct:<domain>@<domain>, and the preferredUsername form.
    for resource in (f"acct:{a.domain}@{a.domain}", f"acct:{name}@{a.domain}", f"{a.base_url}/actor"):
        r = requests.get(webfinger, params={"resource": resource}, timeout=10)
        assert r.status_code == 200, (resource, r.status_code, r.text)
        jrd = r.json()
        assert jrd["subject"] == f"acct:{name}@{a.domain}"
        assert GTS_NAMESTRING.match("@" + jrd["subject"].removeprefix("acct:")).group(1) == name
        assert [link["href"] for link in jrd["links"] if link["rel"] == "self"] == [f"{a.base_url}/actor"]
        pages = [link["href"] for link in jrd["links"] if link["rel"] == "http://webfinger.net/rel/profile-page"]
        assert all(requests.get(page, timeout=10).status_code == 200 for page in pages)
    # Everything the instance actor advertises answers.
    assert requests.get(actor["url"], timeout=10).status_code == 200
    for key in ("outbox", "followers", "following", "featured"):
        if key in actor:
            assert requests.get(actor[key], headers={"Accept": AS2}, timeout=10).status_code == 200, key


def test_gotosocial_follows_fetches_and_receives_mentions(make_instance, gts):
    a = make_instance("a", env=dict(FED_ENV))
    a.create_user("alice")
    alice = a.api("alice")
    alice_uri = f"{a.base_url}/users/alice"
    bob = gts.users["bob"]

    # bob (never seen) follows alice: his keyId serves a stub, so we must fetch the owner, which
    # GoToSocial only serves to signers it can WebFinger (our instance actor).
    follow = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{bob.uri}/follow/1", "type": "Follow",
              "actor": bob.uri, "object": alice_uri}
    r = gts.post(bob, f"{alice_uri}/inbox", follow)
    assert r.status_code == 202, (r.text, gts.refusals)
    followers = wait_for(lambda: alice.account_followers(alice.me()["id"]))
    assert followers[0]["acct"] == f"bob@{gts.host}"
    # Our Accept reaches bob, and GoToSocial could check alice the way it checks every signer.
    accept = wait_for(lambda: gts.activities("Accept"))[0]
    assert accept["object"]["id"] == follow["id"]

    # A post of alice's, fetched by bob: signed fetch answered, `replies` with an embedded first page.
    post = alice.status_post("hello fediverse")
    fetched = gts.get(post["uri"], bob)
    assert fetched.status_code == 200, fetched.text
    replies = fetched.json()["replies"]
    assert isinstance(replies, dict) and isinstance(replies["first"], dict)
    assert replies["first"]["partOf"] == replies["id"] and replies["first"]["orderedItems"] == []
    # The collection itself answers, with the same first page.
    collection = gts.get(replies["id"], bob).json()
    assert collection["first"]["id"] == replies["first"]["id"]

    # alice mentions carol, whom this instance has never seen: resolved through WebFinger, delivered.
    mention = alice.status_post(f"@carol@{gts.host} welcome aboard")
    create = wait_for(lambda: [a for path, a in gts.received if path == "/users/carol/inbox"])[0]
    assert create["type"] == "Create" and create["object"]["id"] == mention["uri"]
    assert {"type": "Mention", "href": gts.users["carol"].uri, "name": f"@carol@{gts.host}"} in create["object"]["tag"]
    assert gts.refusals == []

    # The boundary log shows each outbound fetch once its outcome is known, with the URL really used.
    fetches = [e for e in boundary_log(a, gts.host) if e["direction"] == "out" and e["event"] == "fetch"]
    assert fetches and all(e["outcome"] == "ok" for e in fetches)
    assert all(e["actor"].startswith(f"http://{gts.host}/") for e in fetches), fetches
    assert any("/.well-known/webfinger" in e["actor"] for e in fetches)  # carol's look-up
    assert "Traceback" not in a.log_path.read_text(), a.log()


def test_key_stubs_cannot_lend_a_key_to_another_actor(make_instance, gts):
    """Hostile stubs: a key URL claiming that its key belongs to bob (whose actor lists another key), or
    to an actor on another server. Both are refused, and nothing is applied."""
    other = GtsPeer(usernames=("dora",))
    try:
        a = make_instance("a", env=dict(FED_ENV))
        a.create_user("alice")
        alice = a.api("alice")
        alice_uri = f"{a.base_url}/users/alice"
        bob, eve = gts.users["bob"], gts.add_actor("/users/eve", "eve")
        for n, owner in enumerate((bob.uri, other.users["dora"].uri)):
            gts.key_documents["/users/eve/main-key"] = {
                "@context": ["https://w3id.org/security/v1", "https://www.w3.org/ns/activitystreams"],
                "id": owner, "type": "Person", "preferredUsername": "whoever",
                "publicKey": {"id": eve.key_id, "owner": owner, "publicKeyPem": eve.public_pem}}
            follow = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{owner}/follow/{n}",
                      "type": "Follow", "actor": owner, "object": alice_uri}
            r = gts.post(eve, f"{alice_uri}/inbox", follow)
            assert r.status_code == 401, (owner, r.status_code, r.text)
        assert alice.account_followers(alice.me()["id"]) == []
    finally:
        other.close()


def test_outbound_fetch_is_logged_after_its_outcome(make_instance):
    from tests.conftest import free_port
    a = make_instance("a", env=dict(FED_ENV))
    a.create_user("alice")
    alice = a.api("alice")
    nobody = f"127.0.0.1:{free_port()}"  # nothing listens there
    assert alice.account_search(f"dave@{nobody}", resolve=True) == []
    entries = wait_for(lambda: boundary_log(a, nobody))
    assert [e["outcome"] for e in entries] == ["failed"]
    assert entries[0]["actor"].startswith(f"http://{nobody}/.well-known/webfinger")
    # A mention nobody answers for is posted all the same, unlinked.
    post = alice.status_post(f"hello @dave@{nobody}")
    assert post["mentions"] == [] and "mention" not in post["content"]


def test_actors_without_username_or_webfinger_may_follow_and_fetch(make_instance):
    """Some ActivityPub applications publish actors without preferredUsername, or that WebFinger does
    not know; they are accepted and shown by their id's host and path."""
    peer = GtsPeer(usernames=())
    try:
        a = make_instance("a", env=dict(FED_ENV))
        a.create_user("alice")
        alice = a.api("alice")
        alice_uri = f"{a.base_url}/users/alice"
        anonymous = peer.add_actor("/things/7f3a", None, key_stub=False)
        unlisted = peer.add_actor("/people/ghost", "ghost", webfinger=False, key_stub=False)
        # Claims a name WebFinger gives to someone else: shown by its path, the real one keeps the name.
        carol = peer.add_actor("/users/carol", "carol")
        impostor = peer.add_actor("/people/carol-copy", "carol", webfinger=False, key_stub=False)
        for n, actor in enumerate((anonymous, unlisted, impostor)):
            follow = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{actor.uri}/follows/{n}",
                      "type": "Follow", "actor": actor.uri, "object": alice_uri}
            r = peer.post(actor, f"{alice_uri}/inbox", follow)
            assert r.status_code == 202, (r.text, peer.refusals)
        followers = wait_for(lambda: len(alice.account_followers(alice.me()["id"])) == 3
                             and alice.account_followers(alice.me()["id"]))
        assert sorted(f["acct"] for f in followers) == [
            f"/people/carol-copy@{peer.host}", f"/people/ghost@{peer.host}", f"/things/7f3a@{peer.host}"]
        assert {f["url"] for f in followers} == {anonymous.uri, unlisted.uri, impostor.uri}
        assert remote(alice, f"carol@{peer.host}")["url"] == carol.uri
        # They may fetch alice's public posts with signed requests.
        post = alice.status_post("readable by all")
        for actor in (anonymous, unlisted):
            assert peer.get(post["uri"], actor).status_code == 200
        # An unverified name is never stored as a handle (it could take over a real one).
        names = {row[0] for row in a.sql("SELECT username FROM accounts WHERE domain = ?", (peer.host,))}
        assert "ghost" not in names and "/people/ghost" in names and "carol" in names
    finally:
        peer.close()

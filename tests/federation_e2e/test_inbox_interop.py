"""Our inbox and outbound signatures against independent implementations (http-message-signatures,
httpsig), and hostile input that must be rejected with nothing stored."""

from __future__ import annotations

import json
import time

import requests
from cryptography.hazmat.primitives import serialization
from http_message_signatures import HTTPMessageSigner, HTTPSignatureKeyResolver, algorithms
from httpsig import HeaderVerifier

from federation.signatures import sign_cavage
from tests.federation_e2e.conftest import FED_ENV, wait_for


class _Keys(HTTPSignatureKeyResolver):
    def __init__(self, private_pem: str) -> None:
        self.private_pem = private_pem

    def resolve_private_key(self, key_id: str):
        return serialization.load_pem_private_key(self.private_pem.encode(), password=None)

    def resolve_public_key(self, key_id: str):  # pragma: no cover - signing only
        raise NotImplementedError


class _Msg:
    def __init__(self, method: str, url: str, headers: dict[str, str]) -> None:
        self.method, self.url, self.headers = method, url, headers


def post_rfc9421(fake, url: str, activity: dict) -> requests.Response:
    """POST an activity signed with RFC 9421 by http-message-signatures (not our code)."""
    import base64
    import hashlib
    from email.utils import formatdate
    body = json.dumps(activity).encode()
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    host = url.split("/")[2]
    msg = _Msg("POST", url, {"Host": host, "Date": formatdate(usegmt=True), "Content-Type": "application/activity+json",
                             "Content-Digest": f"sha-256=:{digest}:"})
    HTTPMessageSigner(signature_algorithm=algorithms.RSA_V1_5_SHA256, key_resolver=_Keys(fake.private_pem)).sign(
        msg, key_id=fake.key_id, label="sig1", covered_component_ids=("@method", "@target-uri", "content-digest"),
        use_existing_digest=True)
    return requests.post(url, data=body, headers=msg.headers, timeout=10)


def post_cavage(fake, url: str, activity: dict | bytes, key_pem: str | None = None) -> requests.Response:
    body = activity if isinstance(activity, bytes) else json.dumps(activity).encode()
    headers = {"Content-Type": "application/activity+json"}
    headers.update(sign_cavage("POST", url, headers, body, fake.key_id, key_pem or fake.private_pem))
    return requests.post(url, data=body, headers=headers, timeout=10)


def test_rfc9421_follow_accepted_and_accept_verifies_with_httpsig(make_instance, fake_actor):
    a = make_instance("a", env=dict(FED_ENV))
    a.create_user("alice")
    alice = a.api("alice")
    alice_uri = f"{a.base_url}/users/alice"
    follow = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{fake_actor.uri}#follow-1",
              "type": "Follow", "actor": fake_actor.uri, "object": alice_uri}
    r = post_rfc9421(fake_actor, f"{alice_uri}/inbox", follow)
    assert r.status_code == 202, r.text
    followers = wait_for(lambda: alice.account_followers(alice.me()["id"]))
    assert followers[0]["acct"] == f"mallory@127.0.0.1:{fake_actor.port}"

    # Our Accept arrives at the fake actor's inbox, signed draft-cavage: check it with httpsig.
    headers, body, path = wait_for(lambda: fake_actor.received)[0]
    accept = json.loads(body)
    assert accept["type"] == "Accept" and accept["object"]["id"] == follow["id"]
    actor_doc = requests.get(alice_uri, headers={"Accept": "application/activity+json"}, timeout=10).json()
    verifier = HeaderVerifier(headers, actor_doc["publicKey"]["publicKeyPem"], method="POST", path=path,
                              sign_header="signature",
                              required_headers=["(request-target)", "host", "date", "digest", "content-type"])
    assert verifier.verify()
    import base64
    import hashlib
    assert headers["Digest"] == "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert "Content-Digest" in headers

    # A post by alice is now delivered to the fake follower too.
    alice.status_post("hello follower")
    wait_for(lambda: [b for _, b, _ in fake_actor.received if json.loads(b)["type"] == "Create"])


def test_hostile_inbox_requests(make_instance, fake_actor):
    a = make_instance("a", env=dict(FED_ENV))
    a.create_user("alice")
    alice = a.api("alice")
    post = alice.status_post("do not delete me")
    inbox = f"{a.base_url}/inbox"
    note_uri = post["uri"]
    base = {"@context": "https://www.w3.org/ns/activitystreams", "actor": fake_actor.uri}

    assert requests.post(inbox, json={**base, "id": f"{fake_actor.uri}#1", "type": "Like", "object": note_uri},
                         timeout=10).status_code == 401  # unsigned
    from federation.signatures import generate_rsa_keypair
    wrong_key, _ = generate_rsa_keypair()
    assert post_cavage(fake_actor, inbox, {**base, "id": f"{fake_actor.uri}#2", "type": "Like", "object": note_uri},
                       key_pem=wrong_key).status_code == 401
    assert post_cavage(fake_actor, inbox, b"{not json").status_code == 400
    assert post_cavage(fake_actor, inbox, {**base, "actor": "http://127.0.0.1:1/users/eve", "id": "http://127.0.0.1:1/x",
                                           "type": "Like", "object": note_uri}).status_code == 401
    assert post_cavage(fake_actor, inbox, {**base, "id": "http://elsewhere.example/1", "type": "Like",
                                           "object": note_uri}).status_code == 400
    forged = {**base, "id": f"{fake_actor.uri}#forged-host", "type": "Like", "object": note_uri}
    body = json.dumps(forged).encode()
    headers = {"Content-Type": "application/activity+json", "Host": "other.example"}
    headers.update(sign_cavage("POST", "http://other.example/inbox", headers, body, fake_actor.key_id,
                               fake_actor.private_pem))
    assert requests.post(inbox, data=body, headers=headers, timeout=10).status_code == 401  # forged Host
    huge = b'{"a": "' + b"x" * (1024 * 1024 + 10) + b'"}'
    assert requests.post(inbox, data=huge, headers={"Content-Type": "application/activity+json"},
                         timeout=10).status_code == 413

    # Validly signed but not allowed: deleting someone else's post, deep nesting, wrong types, a note
    # claiming an author on another host. All answered 202 and ignored.
    nested: dict = {"x": 1}
    for _ in range(100):
        nested = {"n": nested}
    attacks = [
        {**base, "id": f"{fake_actor.uri}#del", "type": "Delete", "object": note_uri},
        {**base, "id": f"{fake_actor.uri}#nest", "type": "Create", "object": nested},
        {**base, "id": f"{fake_actor.uri}#types", "type": ["Create"], "to": 5, "object": {"id": 7}},
        {**base, "id": f"{fake_actor.uri}#forge", "type": "Create", "to": [f"{a.base_url}/users/alice"],
         "object": {"id": f"{a.base_url}/users/alice/statuses/1", "type": "Note", "content": "forged",
                    "attributedTo": f"{a.base_url}/users/alice", "to": [f"{a.base_url}/users/alice"]}},
        {**base, "id": f"{fake_actor.uri}#many", "type": "Create",
         "object": {"id": f"{fake_actor.uri}/notes/1", "type": "Note", "attributedTo": fake_actor.uri,
                    "content": "spam", "to": ["https://www.w3.org/ns/activitystreams#Public"] * 5000}},
    ]
    for activity in attacks:
        r = post_cavage(fake_actor, inbox, activity)
        assert r.status_code == 202, (activity["id"], r.status_code, r.text)
    # A legitimate like, sent twice (a replay): counted once.
    like = {**base, "id": f"{fake_actor.uri}#like", "type": "Like", "object": note_uri}
    assert post_cavage(fake_actor, inbox, like).status_code == 202
    assert post_cavage(fake_actor, inbox, like).status_code == 202
    wait_for(lambda: alice.status(post["id"])["favourites_count"] == 1)
    time.sleep(0.5)
    status = alice.status(post["id"])
    assert status["favourites_count"] == 1 and "do not delete me" in status["content"]
    assert all("forged" not in s["content"] for s in alice.timeline_public())
    assert requests.get(f"{a.base_url}/api/v1/instance", timeout=5).status_code == 200
    assert "Traceback" not in a.log_path.read_text(), a.log()


def test_flag_becomes_a_report_for_moderators(make_instance, fake_actor):
    a = make_instance("a", env=dict(FED_ENV))
    a.create_user("modder", admin=True)
    a.create_user("alice")
    modder, alice = a.api("modder"), a.api("alice")
    post = alice.status_post("reported post")
    flag = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{fake_actor.uri}#flag-1", "type": "Flag",
            "actor": fake_actor.uri, "object": [f"{a.base_url}/users/alice", post["uri"]], "content": "spam?"}
    assert post_cavage(fake_actor, f"{a.base_url}/inbox", flag).status_code == 202
    assert post_cavage(fake_actor, f"{a.base_url}/inbox", flag).status_code == 202  # replayed: one report
    note = wait_for(lambda: [n for n in modder.notifications() if n["type"] == "admin.report"])
    time.sleep(0.5)
    assert len([n for n in modder.notifications() if n["type"] == "admin.report"]) == 1
    assert note[0]["account"]["acct"].startswith("mallory@")


def test_notes_published_in_the_same_millisecond_are_all_kept(make_instance, fake_actor):
    """Remote posts get time-sortable ids from their publish time; equal times must not lose posts."""
    from concurrent.futures import ThreadPoolExecutor
    a = make_instance("a", env=dict(FED_ENV))
    a.create_user("alice")
    alice_uri = f"{a.base_url}/users/alice"
    published = "2026-01-01T10:00:00Z"
    n = 1200  # about n²/131072 ≈ 11 id collisions expected without the redraw

    def send(i: int) -> int:
        note = {"id": f"{fake_actor.uri}/notes/{i}", "type": "Note", "attributedTo": fake_actor.uri,
                "content": f"<p>note {i}</p>", "published": published, "to": [alice_uri],
                "tag": [{"type": "Mention", "href": alice_uri, "name": "@alice"}]}
        activity = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{fake_actor.uri}/notes/{i}/activity",
                    "type": "Create", "actor": fake_actor.uri, "object": note, "to": [alice_uri]}
        return post_cavage(fake_actor, f"{a.base_url}/inbox", activity).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(send, range(n))) == {202}

    def stored() -> int:
        return a.sql("SELECT count(*) FROM statuses WHERE uri LIKE ?", (f"{fake_actor.uri}/notes/%",))[0][0]
    wait_for(lambda: stored() == n, timeout=60)


def test_a_new_actors_first_activities_arriving_at_once_are_all_accepted(make_instance):
    """The first requests of an actor we have never seen, several at once: each fetches its key and
    stores the actor at the same time as the others (on PostgreSQL, concurrent transactions), and none
    may be refused for it."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.federation_e2e.conftest import FakeActor
    # Connections enough for all eight to store the actor at once.
    a = make_instance("a", env={**FED_ENV, "CROSSTALK_DATABASE_POOL_SIZE": "8"})
    a.create_user("alice")
    alice_uri = f"{a.base_url}/users/alice"
    actors = [FakeActor(f"newcomer{i}") for i in range(20)]
    try:
        def send(job: tuple[FakeActor, int]) -> int:
            actor, i = job
            note = {"id": f"{actor.uri}/notes/{i}", "type": "Note", "attributedTo": actor.uri,
                    "content": f"<p>hello {i}</p>", "to": [alice_uri],
                    "tag": [{"type": "Mention", "href": alice_uri, "name": "@alice"}]}
            activity = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{actor.uri}/notes/{i}/activity",
                        "type": "Create", "actor": actor.uri, "object": note, "to": [alice_uri]}
            return post_cavage(actor, f"{a.base_url}/inbox", activity).status_code

        for actor in actors:  # each one's first eight requests at once
            with ThreadPoolExecutor(8) as pool:
                assert list(pool.map(send, [(actor, i) for i in range(8)])) == [202] * 8, actor.uri
        stored = a.sql("SELECT count(*) FROM accounts WHERE uri LIKE ?", ("%/users/newcomer%",))[0][0]
        assert stored == len(actors)
    finally:
        for actor in actors:
            actor.close()

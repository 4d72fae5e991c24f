"""Web Push through the real interface: apps subscribe at /api/v1/push/subscription (Mastodon.py or a
plain JSON client, with real P-256 keys), a push service on loopback receives what the server sends,
and the tests decrypt and check it with their own implementation of RFC 8291 and RFC 8292."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
import requests
from mastodon import Mastodon

from tests.conftest import Instance
from tests.server.push_support import Device, PushService, Received, b64d, wait_for

PUSH_ENV = {
    "CROSSTALK_PUSH_ALLOWED_HOSTS": "127.0.0.1",
    "CROSSTALK_PUSH_ALLOWED_PRIVATE_ADDRESSES": "127.0.0.1/32",  # the test push service is on loopback
    "CROSSTALK_PUSH_RETRY_SCALE": "0.01",
    "CROSSTALK_POLLS_MIN_EXPIRATION": "2",
    "CROSSTALK_SCHEDULER_INTERVAL": "1",
    "CROSSTALK_PASSWORD_GRANT": "true",
}
ALERTS = ("mention", "status", "reblog", "follow", "follow_request", "favourite", "poll", "update",
          "admin.sign_up", "admin.report")


@pytest.fixture
def push_service():
    service = PushService()
    yield service
    service.close()


@pytest.fixture
def inst(make_instance) -> Instance:
    inst = make_instance("a", env=dict(PUSH_ENV))
    for name in ("alice", "bob", "carol"):
        inst.create_user(name)
    return inst


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def subscribe(inst: Instance, token: str, endpoint: str, device: Device, *, standard: bool = True,
              alerts: dict[str, bool] | None = None, policy: str = "all",
              keys: dict[str, str] | None = None) -> requests.Response:
    """What an app that speaks RFC 8291 sends (JSON, standard = true)."""
    body = {"subscription": {"endpoint": endpoint, "standard": standard,
                             "keys": keys or {"p256dh": base64.urlsafe_b64encode(device.public).decode().rstrip("="),
                                              "auth": base64.urlsafe_b64encode(device.auth).decode().rstrip("=")}},
            "data": {"alerts": alerts if alerts is not None else dict.fromkeys(ALERTS, True), "policy": policy}}
    return requests.post(f"{inst.base_url}/api/v1/push/subscription", json=body, headers=auth(token), timeout=10)


def current(inst: Instance, token: str) -> requests.Response:
    return requests.get(f"{inst.base_url}/api/v1/push/subscription", headers=auth(token), timeout=10)


def server_key(inst: Instance) -> bytes:
    v2 = requests.get(f"{inst.base_url}/api/v2/instance", timeout=10).json()
    v1 = requests.get(f"{inst.base_url}/api/v1/instance", timeout=10).json()
    key = v2["configuration"]["vapid"]["public_key"]
    assert v1["configuration"]["vapid"]["public_key"] == key
    raw = b64d(key)
    assert len(raw) == 65 and raw[0] == 4
    return raw


def pushes(service: PushService, path: str, device: Device, key: bytes) -> list[dict[str, Any]]:
    """Every push that arrived at `path`, decrypted, each one's VAPID signature checked."""
    out = []
    for received in service.at(path):
        received.vapid(key, service.origin)
        out.append(received.decrypt(device))
    return out


def push_of(service: PushService, path: str, device: Device, key: bytes, kind: str) -> dict[str, Any]:
    return wait_for(lambda: next((p for p in pushes(service, path, device, key)
                                  if p["notification_type"] == kind), None))


def boundary_log(inst: Instance, domain: str) -> list[dict[str, Any]]:
    out = inst.cli("admin", "boundary-log", "--domain", domain, "--json").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_every_notification_type_arrives_encrypted_with_mastodons_payload(inst, push_service):
    alice_token = inst.token("alice")
    alice = Mastodon(access_token=alice_token, api_base_url=inst.base_url)
    bob = inst.api("bob")
    device, key = Device(), server_key(inst)
    answer = subscribe(inst, alice_token, push_service.url("/alice"), device)
    assert answer.status_code == 200, answer.text
    sub = answer.json()
    assert sub["endpoint"] == push_service.url("/alice") and sub["standard"] is True and sub["policy"] == "all"
    assert sub["alerts"] == dict.fromkeys(ALERTS, True)
    assert b64d(sub["server_key"]) == key and isinstance(sub["id"], str)
    assert current(inst, alice_token).json() == sub

    alice_id = alice.account_verify_credentials()["id"]
    bob_id = bob.account_verify_credentials()["id"]
    bob.status_post("@alice are you coming to the review?")
    mention = push_of(push_service, "/alice", device, key, "mention")
    newest = alice.notifications()[0]
    assert mention == {
        "access_token": alice_token, "preferred_locale": mention["preferred_locale"],
        "notification_id": int(newest["id"]), "notification_type": "mention",
        "icon": newest["account"]["avatar_static"], "title": "bob mentioned you",
        "body": "@alice are you coming to the review?"}
    assert mention["preferred_locale"]

    bob.account_follow(alice_id)
    assert push_of(push_service, "/alice", device, key, "follow")["title"] == "bob followed you"
    mine = alice.status_post("Minutes of the review are on the wiki")
    bob.status_favourite(mine["id"])
    bob.status_reblog(mine["id"])
    for kind in ("favourite", "reblog"):
        assert push_of(push_service, "/alice", device, key, kind)["body"] == "Minutes of the review are on the wiki"

    alice.account_follow(bob_id, notify=True)
    news = bob.status_post("The build is green again")
    assert push_of(push_service, "/alice", device, key, "status")["body"] == "The build is green again"
    alice.status_reblog(news["id"])
    bob.status_update(news["id"], "The build is green again (for now)")
    assert push_of(push_service, "/alice", device, key, "update")["body"] == "The build is green again (for now)"

    poll = bob.status_post("Lunch?", poll=bob.make_poll(["Canteen", "Park"], expires_in=2))
    alice.poll_vote(poll["poll"]["id"], [1])
    assert push_of(push_service, "/alice", device, key, "poll")["title"] == "A poll by bob has ended"

    # One push per notification, no more: each notification alice has was pushed exactly once.
    notes = wait_for(lambda: (lambda n: n if len(n) == len(push_service.at("/alice")) else None)(
        alice.notifications(limit=40)))
    assert sorted(p["notification_id"] for p in pushes(push_service, "/alice", device, key)) == \
        sorted(int(n["id"]) for n in notes)
    sent = push_service.at("/alice")[0]
    assert sent.header("Content-Encoding") == "aes128gcm"
    assert sent.header("Content-Type") == "application/octet-stream"
    assert int(sent.header("TTL")) > 0 and sent.header("Urgency") == "normal"
    assert all(len(r.body) <= 4096 for r in push_service.at("/alice"))
    assert [e for e in boundary_log(inst, f"127.0.0.1:{push_service.port}")
            if e["event"] == "push" and e["outcome"] == "ok"]


def test_legacy_aesgcm_subscription_made_and_decrypted_by_mastodon_py(inst, push_service):
    """Mastodon.py subscribes without `standard` and decrypts the older aesgcm draft (with http-ece);
    the push is also checked with the tests' own decryption."""
    carol_token = inst.token("carol")
    carol = Mastodon(access_token=carol_token, api_base_url=inst.base_url)
    bob = inst.api("bob")
    private, public = carol.push_subscription_generate_keys()
    sub = carol.push_subscription_set(push_service.url("/carol"), public, mention_events=True,
                                      favourite_events=False, policy="all")
    assert sub["alerts"]["mention"] is True and sub["alerts"]["favourite"] is False
    assert sub["standard"] is False
    assert carol.push_subscription()["id"] == sub["id"]

    bob.status_post("@carol the release notes need a look")
    received = push_service.wait("/carol")[0]
    assert received.header("Content-Encoding") == "aesgcm"
    decrypted = carol.push_subscription_decrypt_push(received.body, private, received.header("Encryption"),
                                                     received.header("Crypto-Key"))
    assert decrypted["notification_type"] == "mention"
    assert decrypted["access_token"] == carol_token
    assert decrypted["body"] == "@carol the release notes need a look"
    # The same push, decrypted and verified independently of http-ece and py-vapid.
    device = Device(private=_private_key(private["privkey"]), auth=private["auth"])
    assert received.decrypt(device)["notification_id"] == int(decrypted["notification_id"])
    received.vapid(server_key(inst), push_service.origin)

    carol.push_subscription_delete()
    assert current(inst, carol_token).status_code == 404
    assert current(inst, carol_token).json() == {"error": "Record not found"}


def _private_key(value: int) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec
    return ec.derive_private_key(value, ec.SECP256R1())


def test_alerts_and_policy_decide_what_is_pushed(inst, push_service):
    alice_token = inst.token("alice")
    alice = Mastodon(access_token=alice_token, api_base_url=inst.base_url)
    bob, carol = inst.api("bob"), inst.api("carol")
    device, key = Device(), server_key(inst)
    alerts = {"mention": True, "favourite": False}
    assert subscribe(inst, alice_token, push_service.url("/a"), device, alerts=alerts).status_code == 200
    mine = alice.status_post("Quarterly numbers are out")
    bob.status_favourite(mine["id"])  # favourites are not wanted
    bob.status_post("@alice nice numbers")
    push_service.wait("/a")
    assert [p["notification_type"] for p in pushes(push_service, "/a", device, key)] == ["mention"]

    # followed: only from accounts alice follows. Bob is not followed: nothing; carol is.
    alice.account_follow(carol.account_verify_credentials()["id"])
    updated = alice.push_subscription_update(policy="followed")
    assert updated["policy"] == "followed" and updated["alerts"]["mention"] is True  # alerts kept
    bob.status_post("@alice again from bob")
    carol.status_post("@alice from carol, whom you follow")
    push_service.wait("/a", 2)
    assert [p["body"] for p in pushes(push_service, "/a", device, key)][1] == "@alice from carol, whom you follow"

    # follower: only from alice's followers. Bob follows alice; carol does not.
    bob.account_follow(alice.account_verify_credentials()["id"])
    alice.push_subscription_update(policy="follower", follow_events=False)
    carol.status_post("@alice carol is no follower")
    bob.status_post("@alice bob follows you")
    push_service.wait("/a", 3)
    time.sleep(0.5)
    assert [p["body"] for p in pushes(push_service, "/a", device, key)][2:] == ["@alice bob follows you"]

    # none: nothing at all; then all again (via a PUT with data[policy], as the docs spell it).
    alice.push_subscription_update(policy="none")
    bob.status_post("@alice silence please")
    answer = requests.put(f"{inst.base_url}/api/v1/push/subscription", headers=auth(alice_token), timeout=10,
                          data={"data[policy]": "all", "data[alerts][favourite]": "true"})
    assert answer.status_code == 200 and answer.json()["policy"] == "all" and answer.json()["alerts"]["favourite"]
    bob.status_post("@alice back to normal")
    push_service.wait("/a", 4)
    time.sleep(0.5)
    assert [p["body"] for p in pushes(push_service, "/a", device, key)][3:] == ["@alice back to normal"]
    assert requests.put(f"{inst.base_url}/api/v1/push/subscription", headers=auth(alice_token), timeout=10,
                        json={"policy": "everyone"}).status_code == 422


def test_gone_subscription_is_removed_and_busy_service_retried(inst, push_service):
    alice_token, carol_token = inst.token("alice"), inst.token("carol")
    bob = inst.api("bob")
    device = Device()
    push_service.answers["/gone"] = [410]
    push_service.answers["/busy"] = [503, 429, 201]
    assert subscribe(inst, alice_token, push_service.url("/gone"), device).status_code == 200
    assert subscribe(inst, carol_token, push_service.url("/busy"), device).status_code == 200
    bob.status_post("@alice @carol standup moved to 10:00")
    push_service.wait("/gone")
    wait_for(lambda: current(inst, alice_token).status_code == 404)
    # Retried after the 503 and the 429, delivered on the third attempt, and decryptable each time.
    busy = push_service.wait("/busy", 3)
    assert {r.decrypt(device)["notification_type"] for r in busy} == {"mention"}
    time.sleep(0.5)
    assert len(push_service.at("/busy")) == 3 and len(push_service.at("/gone")) == 1
    log = boundary_log(inst, f"127.0.0.1:{push_service.port}")
    assert [e for e in log if e["outcome"] == "failed" and "gone" in (e["reason"] or "")]
    assert [e["outcome"] for e in log if e["event"] == "push" and e["outcome"] in ("retry", "ok")] == \
        ["retry", "retry", "ok"]


def test_hostile_subscriptions_are_refused(inst, push_service):
    token = inst.token("alice")
    device = Device()
    good = {"p256dh": base64.urlsafe_b64encode(device.public).decode(),
            "auth": base64.urlsafe_b64encode(device.auth).decode()}
    off_curve = base64.urlsafe_b64encode(b"\x04" + b"\x01" * 64).decode()
    forged = [
        {**good, "p256dh": off_curve},  # not a point on P-256
        {**good, "p256dh": base64.urlsafe_b64encode(device.public[:33]).decode()},  # compressed/short
        {**good, "auth": base64.urlsafe_b64encode(b"short").decode()},
        {**good, "auth": "not base64 at all!"},
        {**good, "p256dh": "A" * 100_000},  # oversized
    ]
    for keys in forged:
        answer = subscribe(inst, token, push_service.url("/x"), device, keys=keys)
        assert answer.status_code == 422, (keys, answer.text)
        assert "error" in answer.json()
    assert current(inst, token).status_code == 404

    refused = {
        "https://push.evil.example/steal": "not allowed",
        "http://10.0.0.7/push": "not allowed",
        "ftp://127.0.0.1/push": "https",
        "https://user:pw@127.0.0.1/push": "credentials",
        "https://127.0.0.1/" + "x" * 3000: "longer",
    }
    for endpoint, reason in refused.items():
        answer = subscribe(inst, token, endpoint, device)
        assert answer.status_code == 422 and reason in answer.json()["error"], (endpoint, answer.text)
    assert current(inst, token).status_code == 404
    log = wait_for(lambda: boundary_log(inst, "push.evil.example"))
    assert log[0]["event"] == "push" and log[0]["outcome"] == "rejected"
    assert push_service.received == []

    # A token without the push scope, and no token at all.
    assert subscribe(inst, inst.token("alice", "read write"), push_service.url("/x"), device).status_code == 403
    assert requests.get(f"{inst.base_url}/api/v1/push/subscription", timeout=10).status_code == 401


def test_private_address_refused_when_sending_and_logged(make_instance, push_service):
    """An allowed host name that resolves to a loopback address: refused at connect time (names are
    checked when a push is sent, against what they resolve to), logged, and no request is made."""
    inst = make_instance("p", env={"CROSSTALK_PUSH_ALLOWED_HOSTS": "localhost,127.0.0.1"})
    for name in ("alice", "bob"):
        inst.create_user(name)
    token = inst.token("alice")
    device = Device()
    literal = subscribe(inst, token, push_service.url("/a"), device)
    assert literal.status_code == 422 and "private" in literal.json()["error"]
    named = subscribe(inst, token, f"http://localhost:{push_service.port}/a", device)
    assert named.status_code == 200, named.text
    inst.api("bob").status_post("@alice can you hear me?")
    entries = wait_for(lambda: [e for e in boundary_log(inst, f"localhost:{push_service.port}")
                                if e["event"] == "push"])
    assert entries[0]["outcome"] == "rejected" and "private" in entries[0]["reason"]
    assert push_service.received == []


def test_long_posts_are_truncated_as_mastodon_does(inst, push_service):
    alice_token = inst.token("alice")
    bob = inst.api("bob")
    bob.account_update_credentials(display_name="Bob " + "the Builder " * 2)
    device, key = Device(), server_key(inst)
    assert subscribe(inst, alice_token, push_service.url("/a"), device).status_code == 200
    text = "@alice " + "word " * 900
    bob.status_post(text)
    pushed = push_of(push_service, "/a", device, key, "mention")
    assert len(pushed["body"]) == 140 and pushed["body"].endswith("...")
    assert pushed["body"][:-3] == " ".join(text.split())[:137]
    assert len(push_service.at("/a")[0].body) <= 4096
    bob.status_post("@alice short", spoiler_text="cw: spoilers")
    assert wait_for(lambda: [p for p in pushes(push_service, "/a", device, key) if p["body"] == "cw: spoilers"])


def test_revoked_token_loses_its_subscription(inst, push_service):
    app = requests.post(f"{inst.base_url}/api/v1/apps", timeout=10, data={
        "client_name": "phone", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob", "scopes": "read write push"}).json()

    def password_token() -> str:
        answer = requests.post(f"{inst.base_url}/oauth/token", timeout=10, data={
            "grant_type": "password", "client_id": app["client_id"], "client_secret": app["client_secret"],
            "username": "alice@example.test", "password": "correct horse battery", "scope": "read write push"})
        assert answer.status_code == 200, answer.text
        return answer.json()["access_token"]

    revoked, kept = password_token(), password_token()
    device = Device()
    assert subscribe(inst, revoked, push_service.url("/revoked"), device).status_code == 200
    assert subscribe(inst, kept, push_service.url("/kept"), device).status_code == 200
    assert requests.post(f"{inst.base_url}/oauth/revoke", timeout=10, data={
        "client_id": app["client_id"], "client_secret": app["client_secret"], "token": revoked}).status_code == 200
    bob = inst.api("bob")
    bob.status_post("@alice one phone only")
    push_service.wait("/kept")
    # A new push per notification from here on only reaches the token that still works.
    bob.status_post("@alice still one phone")
    push_service.wait("/kept", 2)
    assert push_service.at("/revoked") == []
    assert current(inst, revoked).status_code == 401

    # A password reset revokes every token of the account, and so every subscription: the next mention
    # reaches only a subscription made afterwards.
    inst.cli("admin", "reset-password", "alice", "--password", "another long password")
    assert subscribe(inst, inst.token("alice"), push_service.url("/after"), device).status_code == 200
    bob.status_post("@alice only the new phone")
    push_service.wait("/after")
    assert len(push_service.at("/kept")) == 2 and push_service.at("/revoked") == []


def test_support_decrypts_only_what_it_should():
    """The tests' own decryption fails on a tampered push (so its passes mean something)."""
    from cryptography.exceptions import InvalidTag

    from server.services.webpush import VapidKey, prepare

    device = Device()
    push = prepare(b'{"hello": 1}', device.public, device.auth, True, VapidKey.generate(),
                   "https://push.example/x", "mailto:admin@example.test")
    good = Received("/x", push.headers, push.body)
    assert good.decrypt(device) == {"hello": 1}
    tampered = Received("/x", push.headers, push.body[:-1] + bytes([push.body[-1] ^ 1]))
    with pytest.raises(InvalidTag):
        tampered.decrypt(device)
    with pytest.raises(InvalidTag):
        good.decrypt(Device())

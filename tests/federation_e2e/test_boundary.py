"""The organisation's boundary, across three real instances: A allows B only, C is unknown."""

from __future__ import annotations

import json
import re
import socket
import threading
import time

import pytest
import requests

from federation.signatures import sign_cavage
from tests.federation_e2e.conftest import wait_for
from tests.federation_e2e.test_two_instances import remote

ALLOWLIST_ENV = {
    "CROSSTALK_FEDERATION_MODE": "allowlist",
    "CROSSTALK_FEDERATION_ALLOWED_PRIVATE_ADDRESSES": "127.0.0.0/8",
    "CROSSTALK_FEDERATION_RETRY_SCALE": "0.02",
}
AS2 = "application/activity+json"


def signed_get(signer, url: str) -> requests.Response:
    """GET `url` signed with `signer` instance's own instance-actor key (read from its database)."""
    pem = signer.sql("SELECT private_key_pem FROM accounts WHERE uri = ?", (f"{signer.base_url}/actor",))[0][0]
    headers = {"Accept": AS2}
    headers.update(sign_cavage("GET", url, headers, None, f"{signer.base_url}/actor#main-key", pem))
    return requests.get(url, headers=headers, timeout=10)


def signed_post(signer, url: str, activity: dict) -> requests.Response:
    pem = signer.sql("SELECT private_key_pem FROM accounts WHERE uri = ?", (f"{signer.base_url}/actor",))[0][0]
    body = json.dumps(activity).encode()
    headers = {"Content-Type": AS2}
    headers.update(sign_cavage("POST", url, headers, body, f"{signer.base_url}/actor#main-key", pem))
    return requests.post(url, data=body, headers=headers, timeout=10)


def boundary_log(inst, domain: str) -> list[dict]:
    out = inst.cli("admin", "boundary-log", "--domain", domain, "--json").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.fixture
def trio(make_instance):
    a = make_instance("a", env=dict(ALLOWLIST_ENV))
    b = make_instance("b", env=dict(ALLOWLIST_ENV))
    c = make_instance("c", env=dict(ALLOWLIST_ENV))
    a.cli("admin", "domain", "allow", b.domain)
    b.cli("admin", "domain", "allow", a.domain)
    c.cli("admin", "domain", "allow", a.domain)  # C would talk to A, but A does not know C
    a.create_user("alice")
    b.create_user("bob")
    c.create_user("carol")
    return a, b, c


def follow(api, acct):
    account = remote(api, acct)
    api.account_follow(account["id"])
    wait_for(lambda: api.account_relationships(account["id"])[0]["following"])
    return account


def test_allowlist_admits_partner_and_refuses_strangers(trio):
    a, b, c = trio
    alice, bob, carol = a.api("alice"), b.api("bob"), c.api("carol")
    follow(alice, f"bob@{b.domain}")
    post = bob.status_post("partners only")
    wait_for(lambda: [s for s in alice.timeline_home() if s["uri"] == post["uri"]])

    # C's signed fetch of alice's actor is refused, so carol cannot even find her from C.
    assert carol.account_search(f"alice@{a.domain}", resolve=True) == []
    fetches = wait_for(lambda: [e for e in boundary_log(a, c.domain) if e["event"] == "fetch"])
    assert fetches[0]["outcome"] == "rejected" and "not on the allowlist" in fetches[0]["reason"]
    # A Follow that C delivers anyway (signed with C's real key) is refused at the inbox with 403.
    follow_activity = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{c.base_url}/actor#follow-1",
                       "type": "Follow", "actor": f"{c.base_url}/actor", "object": f"{a.base_url}/users/alice"}
    assert signed_post(c, f"{a.base_url}/users/alice/inbox", follow_activity).status_code == 403
    wait_for(lambda: [e for e in boundary_log(a, c.domain) if e["event"] == "receive" and e["outcome"] == "rejected"])
    assert alice.account_followers(alice.me()["id"]) == []

    # A never fetches from C: resolving carol fails and is logged, and C's server sees no request from A.
    assert alice.account_search(f"carol@{c.domain}", resolve=True) == []
    assert [e for e in boundary_log(a, c.domain) if e["event"] == "fetch" and e["outcome"] == "rejected"]
    # C's signed fetch of alice's post is refused with 403.
    mine = alice.status_post("hello partners")
    assert signed_get(c, mine["uri"]).status_code == 403
    assert signed_get(b, mine["uri"]).status_code == 200
    assert [e for e in boundary_log(a, b.domain)
            if e["direction"] == "out" and e["event"] == "delivery" and e["outcome"] == "ok"]


def test_local_only_never_leaves_and_followers_only_policy(trio):
    a, b, _c = trio
    alice, bob = a.api("alice"), b.api("bob")
    a.create_user("amy")
    amy = a.api("amy")
    amy.account_follow(alice.me()["id"])
    follow(bob, f"alice@{a.domain}")

    auth = {"Authorization": f"Bearer {a.token('alice')}"}
    # Akkoma's visibility "local" and GoToSocial's local_only flag (Mastodon.py knows neither, so plain HTTP).
    inside = requests.post(f"{a.base_url}/api/v1/statuses", json={"status": "internal: Q3", "visibility": "local"},
                           headers=auth, timeout=10).json()
    also_inside = requests.post(f"{a.base_url}/api/v1/statuses", data={"status": "internal too", "local_only": "1"},
                                headers=auth, timeout=10).json()
    assert inside["local_only"] is True and also_inside["local_only"] is True
    reply = alice.status_post("reply stays in", in_reply_to_id=inside["id"])
    assert reply["local_only"] is True
    assert inside["id"] in [s["id"] for s in amy.timeline_home()]  # colleagues see it
    outside = alice.status_post("public announcement")
    wait_for(lambda: [s for s in bob.timeline_home() if s["uri"] == outside["uri"]])
    time.sleep(1.0)
    uris_on_b = {s["uri"] for s in bob.timeline_home()}
    assert inside["uri"] not in uris_on_b and also_inside["uri"] not in uris_on_b and reply["uri"] not in uris_on_b
    stored = {row[0] for row in b.sql("SELECT uri FROM statuses")}
    assert outside["uri"] in stored and inside["uri"] not in stored and reply["uri"] not in stored
    assert signed_get(b, inside["uri"]).status_code == 404
    assert requests.get(inside["uri"], headers={"Accept": AS2}, timeout=10).status_code == 404
    # An activity aimed at a local-only post (here a Like from the partner) is refused and logged.
    like = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{b.base_url}/actor#like-inside",
            "type": "Like", "actor": f"{b.base_url}/actor", "object": inside["uri"]}
    assert signed_post(b, f"{a.base_url}/inbox", like).status_code == 202
    refused = wait_for(lambda: [e for e in boundary_log(a, b.domain)
                                if e["activity_type"] == "Like" and e["outcome"] == "rejected"])
    assert "local-only" in refused[0]["reason"]
    assert alice.status(inside["id"])["favourites_count"] == 0
    # Boosting a local-only post keeps it inside.
    amy.status_reblog(inside["id"])
    time.sleep(0.5)
    assert inside["uri"] not in {s["uri"] for s in bob.timeline_home()}

    # followers_only: A now sends public posts to B as followers-only.
    a.cli("admin", "domain", "allow", b.domain, "--followers-only")
    time.sleep(1.2)  # rules are re-read at most once a second
    later = alice.status_post("public, but followers-only for partner B")
    got = wait_for(lambda: [s for s in bob.timeline_home() if s["uri"] == later["uri"]])[0]
    assert got["visibility"] == "private"
    assert later["visibility"] == "public"


def test_authorized_fetch_and_blocking_severs_follows(trio):
    a, b, _c = trio
    alice, bob = a.api("alice"), b.api("bob")
    post = alice.status_post("secure mode")
    assert requests.get(post["uri"], headers={"Accept": AS2}, timeout=10).status_code == 401
    ok = signed_get(b, post["uri"])
    assert ok.status_code == 200 and ok.json()["id"] == post["uri"]
    # The bare actor (with its key) stays reachable without a signature, and WebFinger too.
    actor = requests.get(f"{a.base_url}/users/alice", headers={"Accept": AS2}, timeout=10).json()
    assert actor["publicKey"]["publicKeyPem"] and "outbox" in actor and "summary" not in actor
    assert requests.get(f"{a.base_url}/.well-known/webfinger",
                        params={"resource": f"acct:alice@{a.domain}"}, timeout=10).status_code == 200

    bob_on_a = follow(alice, f"bob@{b.domain}")
    follow(bob, f"alice@{a.domain}")
    out = a.cli("admin", "domain", "block", b.domain)
    assert re.search(r"purged (\d+)/\1 accounts", out.stderr), out.stderr  # bob and B's instance actor
    assert not alice.account_relationships(bob_on_a["id"])[0]["following"]
    assert alice.account_followers(alice.me()["id"]) == []
    assert alice.account_following(alice.me()["id"]) == []
    time.sleep(1.2)
    assert signed_get(b, post["uri"]).status_code == 403


def test_private_address_refused_before_connecting(make_instance):
    # Only 127.0.0.1 is allowed as a private address; a "partner" on 127.0.0.2 must never be contacted.
    listener = socket.socket()
    listener.bind(("127.0.0.2", 0))
    listener.listen(5)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    connections = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                connections.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        a = make_instance("a", env={"CROSSTALK_FEDERATION_MODE": "blocklist",
                                    "CROSSTALK_FEDERATION_ALLOWED_PRIVATE_ADDRESSES": "127.0.0.1"})
        a.create_user("alice")
        alice = a.api("alice")
        assert alice.account_search(f"dave@127.0.0.2:{port}", resolve=True) == []
        entries = wait_for(lambda: boundary_log(a, f"127.0.0.2:{port}"))
        assert "federation.allowed_private_addresses" in entries[-1]["reason"]
        assert connections == []
    finally:
        stop.set()
        thread.join(2)
        listener.close()


def test_domain_rules_csv_round_trip_admin_api_and_nodeinfo(make_instance, tmp_path):
    a = make_instance("a", env=dict(ALLOWLIST_ENV))
    a.create_user("ops", admin=True)
    a.cli("admin", "domain", "allow", "partner.example", "--followers-only", "--no-direct", "--publish-policy",
          "--max-visibility-in", "unlisted")
    a.cli("admin", "domain", "allow", "eng.example")
    a.cli("admin", "domain", "block", "spam.example", "--severity", "limit", "--reject-media",
          "--public-comment", "noisy")
    before = a.cli("admin", "domain", "list").stdout
    allows = a.cli("admin", "domain", "export", "--kind", "allow").stdout
    blocks = a.cli("admin", "domain", "export", "--kind", "block").stdout
    assert blocks.splitlines()[0] == "#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate"
    for domain in ("partner.example", "eng.example", "spam.example"):
        a.cli("admin", "domain", "remove", domain)
    assert "partner.example" not in a.cli("admin", "domain", "list").stdout
    (tmp_path / "allows.csv").write_text(allows)
    (tmp_path / "blocks.csv").write_text(blocks)
    a.cli("admin", "domain", "import", str(tmp_path / "allows.csv"), "--kind", "allow")
    a.cli("admin", "domain", "import", str(tmp_path / "blocks.csv"), "--kind", "block")
    assert a.cli("admin", "domain", "list").stdout == before

    info = requests.get(f"{a.base_url}/nodeinfo/2.1", timeout=10).json()
    published = info["metadata"]["federation"]
    assert published["mode"] == "allowlist"
    assert [p["domain"] for p in published["partner_policies"]] == ["partner.example"]

    headers = {"Authorization": f"Bearer {a.token('ops', 'read write admin:read admin:write')}"}
    listed = requests.get(f"{a.base_url}/api/v1/admin/domain_blocks", headers=headers, timeout=10).json()
    assert [b["domain"] for b in listed] == ["spam.example"] and listed[0]["severity"] == "limit"
    created = requests.post(f"{a.base_url}/api/v1/admin/domain_allows", data={"domain": "new.example"},
                            headers=headers, timeout=10)
    assert created.status_code == 200 and created.json()["domain"] == "new.example"
    assert requests.delete(f"{a.base_url}/api/v1/admin/domain_allows/{created.json()['id']}", headers=headers,
                           timeout=10).status_code == 200
    bad = requests.post(f"{a.base_url}/api/v1/admin/domain_blocks", data={"domain": "not a domain"},
                        headers=headers, timeout=10)
    assert bad.status_code == 422
    a.create_user("pleb")
    pleb = {"Authorization": f"Bearer {a.token('pleb', 'read write admin:read admin:write')}"}
    assert requests.get(f"{a.base_url}/api/v1/admin/domain_blocks", headers=pleb, timeout=10).status_code == 403

    # Every change of a rule is in the audit log with who made it: the CLI or the admin through the API.
    changes = [(e["actor"], e["action"], e["target"]) for e in map(json.loads, a.cli(
        "admin", "audit-log", "--action", "domain.", "--json").stdout.splitlines())]
    assert ("cli", "domain.block", "spam.example") in changes
    assert ("cli", "domain.remove", "partner.example") in changes
    assert ("ops", "domain.allow", "new.example") in changes and ("ops", "domain.remove", "new.example") in changes
    assert not any(target == "not a domain" for _, _, target in changes)


def test_domain_cannot_change_under_a_data_directory(make_instance):
    a = make_instance("a", env=dict(ALLOWLIST_ENV))
    a.stop()
    moved = dict(a.env, CROSSTALK_DOMAIN="renamed.example.test")
    import subprocess
    import sys

    from tests.conftest import ROOT
    result = subprocess.run([sys.executable, "-m", "server.cli", "serve"], cwd=ROOT, env=moved, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert "cannot change" in result.stderr and "Traceback" not in result.stderr

"""Federation counters, the delivery queue gauge and the remote domain in access logs, between two
real instances over loopback."""

from __future__ import annotations

import json

import requests

from tests.federation_e2e.conftest import wait_for
from tests.ops.test_health_metrics_logs import samples, value

ENV = {
    "CROSSTALK_FEDERATION_MODE": "blocklist",
    "CROSSTALK_FEDERATION_ALLOWED_PRIVATE_ADDRESSES": "127.0.0.0/8",
    "CROSSTALK_LOG_FORMAT": "json",
    "CROSSTALK_LOG_LEVEL": "info",
}


def scrape(inst) -> dict:
    return samples(requests.get(f"{inst.base_url}/metrics", timeout=5).text)


def test_inbox_delivery_and_signature_metrics(make_instance):
    a = make_instance("a", env=dict(ENV))
    b = make_instance("b", env=dict(ENV))
    a.create_user("alice")
    b.create_user("bob")
    alice, bob = a.api("alice"), b.api("bob")

    # bob@b follows alice@a: b delivers a Follow, a's inbox accepts it and delivers an Accept back.
    alice_on_b = bob.account_search(f"alice@{a.domain}", resolve=True)[0]
    bob.account_follow(alice_on_b["id"])
    wait_for(lambda: bob.account_relationships(alice_on_b["id"])[0]["following"])
    on_a = wait_for(lambda: value(scrape(a), "crosstalk_inbox_activities_total", type="Follow", outcome="accepted"))
    assert on_a == 1
    assert wait_for(lambda: value(scrape(a), "crosstalk_deliveries_total", outcome="delivered", host_class="other"))
    assert value(scrape(b), "crosstalk_inbox_activities_total", type="Accept", outcome="accepted") == 1
    assert value(scrape(b), "crosstalk_deliveries_total", outcome="delivered", host_class="other") >= 1

    # The access line of the signed inbox POST names the remote domain.
    lines = [json.loads(x) for x in a.log_path.read_text().splitlines() if x.startswith("{")]
    inbox_lines = [x for x in lines if x.get("event") == "request" and x.get("route", "").endswith("/inbox")]
    assert inbox_lines and inbox_lines[0]["remote_domain"] == b.domain and inbox_lines[0]["status"] == 202

    # Unsigned and badly signed inbox requests count as signature failures and rejected activities.
    unsigned = requests.post(f"{a.base_url}/inbox", json={"type": "Create"}, timeout=5)
    assert unsigned.status_code == 401
    forged = requests.post(f"{a.base_url}/inbox", json={"type": "Create"}, timeout=5,
                           headers={"Signature": 'keyId="x",algorithm="rsa-sha256",headers="date",signature="AA=="'})
    assert forged.status_code == 401
    found = scrape(a)
    assert value(found, "crosstalk_signature_failures_total", reason="malformed") == 2
    assert value(found, "crosstalk_inbox_activities_total", type="unknown", outcome="rejected") == 2

    # With b down, alice's post waits in a's delivery queue (the first retry is minutes away).
    b.stop()
    alice.status_post("while b is down")
    assert wait_for(lambda: value(scrape(a), "crosstalk_delivery_queue_depth") == 1)
    assert wait_for(lambda: value(scrape(a), "crosstalk_deliveries_total", outcome="retry", host_class="other"))

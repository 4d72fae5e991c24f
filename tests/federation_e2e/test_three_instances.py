"""Three instances: fan-out to several hosts, and a thread completed by backfill."""

from __future__ import annotations

from tests.federation_e2e.conftest import FED_ENV, wait_for
from tests.federation_e2e.test_two_instances import remote


def test_three_instances_thread_backfill(make_instance):
    a = make_instance("a", env=dict(FED_ENV))
    b = make_instance("b", env=dict(FED_ENV))
    c = make_instance("c", env=dict(FED_ENV))
    a.create_user("alice")
    b.create_user("bob")
    c.create_user("carol")
    alice, bob, carol = a.api("alice"), b.api("bob"), c.api("carol")

    # alice@A and carol@C both follow bob@B: one post fans out to two hosts.
    for api in (alice, carol):
        bob_there = remote(api, f"bob@{b.domain}")
        api.account_follow(bob_there["id"])
        wait_for(lambda api=api, bob_there=bob_there: api.account_relationships(bob_there["id"])[0]["following"])
    post = bob.status_post("Kick-off for project Falcon")
    on_a = wait_for(lambda: [s for s in alice.timeline_home() if s["uri"] == post["uri"]])[0]
    on_c = wait_for(lambda: [s for s in carol.timeline_home() if s["uri"] == post["uri"]])[0]

    # carol replies; the reply goes to B (the author replied to), not to A.
    reply = carol.status_post(f"@bob@{b.domain} count me in", in_reply_to_id=on_c["id"])
    wait_for(lambda: bob.status_context(post["id"])["descendants"])
    # alice opens the thread on A: A fetches the conversation from B and finds carol's reply.
    descendants = wait_for(lambda: alice.status_context(on_a["id"])["descendants"], timeout=20)
    assert descendants[0]["uri"] == reply["uri"]
    assert descendants[0]["account"]["acct"] == f"carol@{c.domain}"

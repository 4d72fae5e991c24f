"""The inbox worker stores a sender's run of notes in one transaction: the order of arrival still
holds (a reply to a note of the same run finds it, a Delete comes after the Create it undoes), a note
sent twice is stored once, and the rest of a run is stored when one of its notes is refused."""

from __future__ import annotations

import json
import time

import pytest

from tests.federation_e2e.conftest import FED_ENV, wait_for
from tests.federation_e2e.gts_peer import PUBLIC, GtsPeer

AS = "https://www.w3.org/ns/activitystreams"


@pytest.fixture
def peer():
    peer = GtsPeer(usernames=("bob",))
    yield peer
    peer.close()


def create(actor_uri: str, n: int, note_no: int, alice_uri: str, **note: object) -> dict:
    note_id = f"{actor_uri}/statuses/{note_no}"
    return {"@context": AS, "id": f"{actor_uri}/activities/{n}", "type": "Create", "actor": actor_uri,
            "to": [PUBLIC], "cc": [alice_uri],
            "object": {"id": note_id, "type": "Note", "attributedTo": actor_uri, "to": [PUBLIC], "cc": [alice_uri],
                       "content": f"<p>note {note_no}</p>", "published": "2024-01-01T00:00:00Z",
                       "tag": [{"type": "Mention", "href": alice_uri, "name": "@alice"}], **note}}


def test_a_run_of_notes_keeps_its_order_and_stores_each_once(make_instance, peer):
    a = make_instance("a", env=dict(FED_ENV))
    a.create_user("alice")
    alice_uri = f"{a.base_url}/users/alice"
    bob = peer.users["bob"]
    note = f"{bob.uri}/statuses"
    activities = [
        create(bob.uri, 1, 1, alice_uri),
        create(bob.uri, 2, 2, alice_uri, inReplyTo=f"{note}/1"),  # replies to a note of the same run
        create(bob.uri, 3, 1, alice_uri),  # the first note again, under another activity id
        {"@context": AS, "id": f"{bob.uri}/activities/4", "type": "Delete", "actor": bob.uri,
         "object": f"{note}/2"},
        create(bob.uri, 5, 3, alice_uri, attributedTo="https://elsewhere.example/users/eve"),  # refused
        create(bob.uri, 6, 4, alice_uri),
        create(bob.uri, 7, 6, alice_uri),
        create(bob.uri, 8, 7, alice_uri),
        create(bob.uri, 9, 5, alice_uri, inReplyTo=f"{note}/4"),  # the three before it are stored first
    ]
    # Queued while the server is down, so that the worker finds them all at once at the next start.
    a.stop()
    base_id = int(time.time() * 1000) << 16
    received = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    for n, activity in enumerate(activities):
        a.sql("INSERT INTO inbox_activities (id, activity_id, actor_uri, body, received_at, host) VALUES (?, ?, ?, ?, ?, ?)",
              (base_id + n, activity["id"], bob.uri, json.dumps(activity), received, peer.host))
    a.start()
    wait_for(lambda: a.sql("SELECT count(*) FROM inbox_activities WHERE processed_at IS NULL")[0][0] == 0)

    rows = {uri: (sid, reply_to, deleted) for sid, uri, reply_to, deleted in a.sql(
        "SELECT id, uri, in_reply_to_id, deleted_at FROM statuses WHERE uri LIKE ?", (f"{note}/%",))}
    assert sorted(rows) == [f"{note}/{n}" for n in (1, 2, 4, 5, 6, 7)]
    assert rows[f"{note}/2"][1] == rows[f"{note}/1"][0] and rows[f"{note}/2"][2] is not None
    assert rows[f"{note}/5"][1] == rows[f"{note}/4"][0] and rows[f"{note}/5"][2] is None
    assert all(rows[f"{note}/{n}"][2] is None for n in (1, 4, 6, 7))
    errors = a.sql("SELECT activity_id, error FROM inbox_activities WHERE error IS NOT NULL")
    assert [e[0] for e in errors] == [f"{bob.uri}/activities/5"], errors
    # The sender's account counts every stored note and names the latest (batches update it once).
    count, last_id, last_at = a.sql("SELECT statuses_count, last_status_id, last_status_at FROM accounts WHERE uri = ?",
                                    (bob.uri,))[0]
    assert (count, last_id) == (5, max(sid for sid, _, _ in rows.values())) and last_at
    # Each stored note reached the mentioned local user's notifications once.
    assert a.sql("SELECT count(*) FROM notifications n JOIN accounts a ON a.id = n.account_id"
                 " WHERE a.username = 'alice' AND a.domain = '' AND n.type = 'mention'")[0][0] == 5


def test_a_run_of_notes_reaches_each_follower_s_home_and_lists_once(make_instance, peer):
    """The notes of a run are committed together, so their events are dispatched as one batch and
    fanned out together (one read of the sender's followers and lists, shared feed transactions):
    every follower's home timeline and list shows each note of the run once, and the note the run
    deletes shows nowhere. A note deleted before, or stored before, is not stored again (the run's
    notes are looked up together)."""
    a = make_instance("a", env=dict(FED_ENV))
    a.create_users(["alice", "carol", "dave"])
    alice_uri = f"{a.base_url}/users/alice"
    bob = peer.users["bob"]
    note = f"{bob.uri}/statuses"
    # A first note makes bob known here; then alice and carol follow him (dave does not).
    assert peer.post(bob, f"{a.base_url}/inbox", create(bob.uri, 0, 0, alice_uri)).status_code in (200, 202)
    wait_for(lambda: a.sql("SELECT count(*) FROM statuses WHERE uri = ?", (f"{note}/0",))[0][0] == 1)
    bob_id = a.sql("SELECT id FROM accounts WHERE uri = ?", (bob.uri,))[0][0]
    a.stop()
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    base_id = int(time.time() * 1000) << 16
    for n, name in enumerate(("alice", "carol")):
        reader = a.sql("SELECT id FROM accounts WHERE username = ? AND domain = ''", (name,))[0][0]
        a.sql("INSERT INTO follows (id, account_id, target_account_id, created_at) VALUES (?, ?, ?, ?)",
              (base_id + n, reader, bob_id, now))
        if name == "alice":
            a.sql("INSERT INTO lists (id, account_id, title, replies_policy, exclusive, created_at)"
                  " VALUES (?, ?, 'partners', 'list', 0, ?)", (base_id + 10, reader, now))
            a.sql("INSERT INTO list_accounts (id, list_id, account_id, created_at) VALUES (?, ?, ?, ?)",
                  (base_id + 11, base_id + 10, bob_id, now))
    # Note 12 was deleted before (its tombstone stays), and note 0 is stored: both come again in the run.
    a.sql("INSERT INTO tombstones (uri, actor_uri, deleted_at) VALUES (?, ?, ?)", (f"{note}/12", bob.uri, now))
    activities = [create(bob.uri, 1, 1, alice_uri), create(bob.uri, 12, 12, alice_uri), create(bob.uri, 13, 0, alice_uri),
                  create(bob.uri, 2, 2, alice_uri),
                  {"@context": AS, "id": f"{bob.uri}/activities/3", "type": "Delete", "actor": bob.uri,
                   "object": f"{note}/2"},
                  *[create(bob.uri, n, n, alice_uri) for n in range(4, 12)]]
    for n, activity in enumerate(activities):
        a.sql("INSERT INTO inbox_activities (id, activity_id, actor_uri, body, received_at, host) VALUES (?, ?, ?, ?, ?, ?)",
              (base_id + 100 + n, activity["id"], bob.uri, json.dumps(activity), now, peer.host))
    a.start()
    wait_for(lambda: a.sql("SELECT count(*) FROM inbox_activities WHERE processed_at IS NULL")[0][0] == 0)
    wait_for(lambda: a.sql("SELECT count(*) FROM events WHERE dispatched_at IS NULL")[0][0] == 0)

    expected = {f"{note}/{n}" for n in (1, *range(4, 12))}
    assert a.sql("SELECT count(*) FROM statuses WHERE uri = ?", (f"{note}/12",))[0][0] == 0
    assert a.sql("SELECT count(*) FROM statuses WHERE uri = ?", (f"{note}/0",))[0][0] == 1
    for name in ("alice", "carol", "dave"):
        home = [s["uri"] for s in a.api(name).timeline_home(limit=40)]
        assert len(home) == len(set(home)), (name, home)
        assert set(home) == (expected if name != "dave" else set()), (name, home)
    client = a.api("alice")
    (partners,) = client.lists()
    assert {s["uri"] for s in client.timeline_list(partners["id"], limit=40)} == expected

"""Direct-message conversations with read state, and admin announcements with read state and
reactions, end to end with Mastodon.py and the real `crosstalk admin` CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
import requests
from mastodon import MastodonAPIError, MastodonNotFoundError

from tests.server.shared_instance import start_site, wait_for

USERS = ("alice", "bob", "carol", "dave", "admin1")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = start_site(tmp_path_factory.mktemp("conv") / "a", USERS, admins=("admin1",))
    yield site
    site.inst.dispose()


@pytest.fixture
def users(site):
    return {name: site.api(name) for name in USERS}


def test_conversations_read_state_and_removal(site, users):
    alice, bob, carol = users["alice"], users["bob"], users["carol"]
    first = alice.status_post("@bob lunch at noon?", visibility="direct")

    # Conversations are filed while the status fans out, just after the post returns.
    [bobs] = wait_for(bob.conversations)
    assert bobs["unread"] and bobs["last_status"]["id"] == first["id"]
    assert [a["username"] for a in bobs["accounts"]] == ["alice"]
    [alices] = wait_for(alice.conversations)
    assert not alices["unread"] and [a["username"] for a in alices["accounts"]] == ["bob"]
    assert carol.conversations() == []

    # A reply in the thread updates the same conversation, unread for the other side.
    answer = bob.status_post("@alice yes!", visibility="direct", in_reply_to_id=first["id"])
    [alices] = wait_for(lambda: [c for c in alice.conversations() if c["last_status"]["id"] == answer["id"]])
    assert alices["unread"] and alices["last_status"]["id"] == answer["id"]
    [bobs_now] = wait_for(lambda: [c for c in bob.conversations() if c["last_status"]["id"] == answer["id"]])
    assert bobs_now["id"] == bobs["id"] and bobs_now["last_status"]["id"] == answer["id"]
    assert not bobs_now["unread"]  # answering reads the conversation
    read = alice.conversations_read(alices["id"])
    assert read["unread"] is False and read["last_status"]["id"] == answer["id"]
    assert not alice.conversations()[0]["unread"]

    # Other people's conversations do not exist for you.
    with pytest.raises(MastodonNotFoundError):
        carol.conversations_read(alices["id"])
    r = requests.delete(f"{site.inst.base_url}/api/v1/conversations/{alices['id']}", headers=site.auth("carol"),
                        timeout=10)
    assert r.status_code == 404

    # A group message is a conversation of its own, listing everyone else; pages follow the last status.
    group = carol.status_post("@alice @bob team sync moved", visibility="direct")
    convs = wait_for(lambda: [c for c in alice.conversations() if c["last_status"]["id"] == group["id"]]
                     and alice.conversations())
    assert [c["last_status"]["id"] for c in convs] == [group["id"], answer["id"]]
    assert sorted(a["username"] for a in convs[0]["accounts"]) == ["bob", "carol"]
    page = alice.conversations(limit=1)
    assert len(page) == 1 and [c["id"] for c in alice.fetch_next(page)] == [alices["id"]]

    # Deleting the newest message falls back to the previous one; deleting a conversation is per person.
    bob.status_delete(answer["id"])
    alices_now = [c for c in alice.conversations() if c["id"] == alices["id"]][0]
    assert alices_now["last_status"]["id"] == first["id"]
    r = requests.delete(f"{site.inst.base_url}/api/v1/conversations/{bobs['id']}", headers=site.auth("bob"),
                        timeout=10)
    assert r.status_code == 200 and r.json() == {}
    assert [c["last_status"]["id"] for c in bob.conversations()] == [group["id"]]
    assert alices["id"] in [c["id"] for c in alice.conversations()]

    # A public post mentioning someone is no conversation; a blocked sender starts none.
    alice.status_post("@bob public hello")
    carol.account_block(alice.me()["id"])
    ping = alice.status_post("@carol are you there?", visibility="direct")
    wait_for(lambda: [c for c in alice.conversations() if c["last_status"]["id"] == ping["id"]])
    assert [c["last_status"]["id"] for c in bob.conversations()] == [group["id"]]
    assert [c["last_status"]["id"] for c in carol.conversations()] == [group["id"]]


def test_note_to_self_lists_its_owner(users):
    dave = users["dave"]
    note = dave.status_post("reminder: renew badge", visibility="direct")
    [conv] = wait_for(dave.conversations)
    assert conv["last_status"]["id"] == note["id"] and [a["username"] for a in conv["accounts"]] == ["dave"]


def test_announcements_from_the_cli(site, users):
    inst = site.inst
    alice, bob = users["alice"], users["bob"]
    out = inst.cli("admin", "announce", "Welcome to the #Crosstalk pilot, @bob! https://intranet.example/pilot")
    announcement_id = out.stdout.split()[-1]
    assert out.stdout.startswith("created announcement")

    [a] = [x for x in alice.announcements() if str(x["id"]) == announcement_id]
    assert "hashtag" in a["content"] and 'href="https://intranet.example/pilot"' in a["content"]
    assert [m["username"] for m in a["mentions"]] == ["bob"] and a["tags"][0]["name"] == "crosstalk"
    assert a["read"] is False and a["reactions"] == [] and a["published_at"]

    # Reactions: counted per emoji, with `me` for the viewer; one per person and emoji.
    alice.announcement_reaction_create(announcement_id, "👍")
    bob.announcement_reaction_create(announcement_id, "👍")
    bob.announcement_reaction_create(announcement_id, "🎉")
    mine = [x for x in alice.announcements() if str(x["id"]) == announcement_id][0]["reactions"]
    assert [(r["name"], r["count"], r["me"]) for r in mine] == [("👍", 2, True), ("🎉", 1, False)]
    with pytest.raises(MastodonAPIError, match="already reacted"):
        alice.announcement_reaction_create(announcement_id, "👍")
    with pytest.raises(MastodonAPIError, match="emoji"):
        alice.announcement_reaction_create(announcement_id, "blobcat")
    with pytest.raises(MastodonNotFoundError):
        alice.announcement_reaction_delete(announcement_id, "🎉")
    bob.announcement_reaction_delete(announcement_id, "👍")
    theirs = [x for x in bob.announcements() if str(x["id"]) == announcement_id][0]["reactions"]
    assert [(r["name"], r["count"], r["me"]) for r in theirs] == [("👍", 1, False), ("🎉", 1, True)]
    for emoji in ["😀", "🚀", "❤️", "👀", "🙏", "🇫🇷"]:
        alice.announcement_reaction_create(announcement_id, emoji)
    with pytest.raises(MastodonAPIError, match="Maximum"):
        alice.announcement_reaction_create(announcement_id, "🔥")
    r = requests.put(f"{inst.base_url}/api/v1/announcements/{announcement_id}/reactions/{quote('🔥')}",
                     headers=site.auth("bob"), timeout=10)
    assert r.status_code == 422 and r.json()["error"]

    # Read state is per user.
    alice.announcement_dismiss(announcement_id)
    assert [x for x in alice.announcements() if str(x["id"]) == announcement_id][0]["read"] is True
    assert [x for x in bob.announcements() if str(x["id"]) == announcement_id][0]["read"] is False
    anonymous = requests.get(f"{inst.base_url}/api/v1/announcements", timeout=10).json()
    assert any(x["id"] == announcement_id and "read" not in x for x in anonymous)
    with pytest.raises(MastodonNotFoundError):
        alice.announcement_dismiss("123")

    listing = inst.cli("admin", "list-announcements").stdout
    assert announcement_id in listing and "Welcome to the #Crosstalk pilot" in listing
    inst.cli("admin", "delete-announcement", announcement_id)
    assert announcement_id not in [str(x["id"]) for x in alice.announcements()]
    again = inst.cli("admin", "delete-announcement", announcement_id, check=False)
    assert again.returncode == 1 and "no announcement" in again.stderr


def test_announcement_schedule_rules(site, users):
    inst = site.inst
    alice = users["alice"]
    today = datetime.now(UTC).date()
    event = inst.cli("admin", "announce", "Office closed for the all-hands", "--all-day",
                     "--starts-at", today.isoformat(), "--ends-at", (today + timedelta(days=1)).isoformat())
    event_id = event.stdout.split()[-1]
    [shown] = [x for x in alice.announcements() if str(x["id"]) == event_id]
    assert shown["all_day"] and shown["starts_at"] and shown["ends_at"]

    past = inst.cli("admin", "announce", "Yesterday's outage is over", "--starts-at",
                    (today - timedelta(days=3)).isoformat(), "--ends-at", (today - timedelta(days=2)).isoformat())
    assert past.stdout.split()[-1] not in [str(x["id"]) for x in alice.announcements()]

    for args, message in [(["--starts-at", "2030-01-02", "--ends-at", "2030-01-01T00:00"], "after the start"),
                          (["--starts-at", "2030-01-02"], "both a start and an end"),
                          (["--all-day"], "needs a start and an end"),
                          (["--ends-at", "someday"], "not a date")]:
        failed = inst.cli("admin", "announce", "bad", *args, check=False)
        assert failed.returncode == 1 and message in failed.stderr, failed.stderr
    blank = inst.cli("admin", "announce", "   ", check=False)
    assert blank.returncode == 1 and "blank" in blank.stderr

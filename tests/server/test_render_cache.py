"""Statuses and accounts kept in memory as records and encoded JSON (server/services/loaders.py) never
show a stale entry: every change that alters a timeline entry shows in the very next home timeline,
status and notification responses, for the actor and for another viewer, whether the change was made
through this process, through a second one serving the same database, or by any other writer of the
database (the inbox of another process, say); what is per viewer (favourited, reblogged, bookmarked,
pinned, filtered, own poll votes, own reactions) stays per viewer, and what a process keeps of it
(server/services/viewers.py) follows every writer and the clock; and the timelines, which splice kept
bytes, answer exactly what the single-status endpoint renders."""

from __future__ import annotations

import io

import pytest
import requests
from PIL import Image

from tests.conftest import Instance
from tests.server.shared_instance import start_site, wait_for

USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "gina")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = start_site(tmp_path_factory.mktemp("render_cache") / "a", USERS)
    bob, carol = site.api("bob"), site.api("carol")
    alice_id = site.api("alice").me()["id"]
    bob.account_follow(alice_id)
    carol.account_follow(alice_id)
    yield site
    site.inst.dispose()


def entry(api, status_id) -> dict:
    """The status as the viewer's home timeline shows it now (waiting only for the fan-out)."""
    found = wait_for(lambda: [s for s in api.timeline_home(limit=40) if s["id"] == status_id])
    return found[0]


def home_ids(site, name: str) -> list[int]:
    return [s["id"] for s in site.api(name).timeline_home(limit=40)]


def raw_home(site, name: str) -> list[dict]:
    """The home timeline's JSON as it is sent (ids as strings, no client-side conversions)."""
    answer = requests.get(f"{site.inst.base_url}/api/v1/timelines/home?limit=40", headers=site.auth(name), timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def raw_entry(site, name: str, status_id) -> dict:
    return next(s for s in raw_home(site, name) if s["id"] == str(status_id))


def single(site, name: str, status_id: str) -> dict:
    """The status as GET /api/v1/statuses/:id renders it for the viewer (no kept bytes involved)."""
    answer = requests.get(f"{site.inst.base_url}/api/v1/statuses/{status_id}", headers=site.auth(name), timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def without_volatile(status: dict) -> dict:
    """A status without the fields that legitimately differ between two reads a moment apart."""
    status = dict(status)
    if status.get("poll"):
        status["poll"] = {k: v for k, v in status["poll"].items() if k != "expired"}
    if status.get("reblog"):
        status["reblog"] = without_volatile(status["reblog"])
    return status


def remote_status_in_feed(inst, name: str, reader_id: int, first_id: int) -> int:
    """A remote account @name@name.example (id `first_id`) and a public status of it (the next id) in
    the reader's home feed, written straight into the database as the inbox of any process would."""
    remote_id, status_id, now = first_id, first_id + 1, "2026-01-01T00:00:00.000Z"
    inst.sql("INSERT INTO accounts (id, username, domain, uri, url, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
             (remote_id, name, f"{name}.example", f"https://{name}.example/users/{name}",
              f"https://{name}.example/@{name}", now, now))
    inst.sql("INSERT INTO statuses (id, uri, url, account_id, local, content, source_text, spoiler_text, visibility,"
             " sensitive, created_at) VALUES (?, ?, ?, ?, 0, '<p>from afar</p>', '', '', 'public', 0, ?)",
             (status_id, f"https://{name}.example/s/1", f"https://{name}.example/s/1", remote_id, now))
    inst.sql("INSERT INTO home_feed (account_id, status_id) VALUES (?, ?)", (reader_id, status_id))
    return status_id


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def test_edits_counts_and_viewer_flags_show_at_once(site):
    alice, bob, carol = site.api("alice"), site.api("bob"), site.api("carol")
    media = alice.media_post(png(), mime_type="image/png", description="a red square")
    post = alice.status_post("Hello @bob #first", media_ids=[media["id"]])
    for _ in range(2):  # the second read is served from the cache
        seen = entry(bob, post["id"])
        assert [t["name"] for t in seen["tags"]] == ["first"]
        assert [m["username"] for m in seen["mentions"]] == ["bob"]
        assert [m["description"] for m in seen["media_attachments"]] == ["a red square"]
        assert seen["favourited"] is False and seen["favourites_count"] == 0

    # An edit changes text, tags and mentions: the next timeline of every viewer shows the new version.
    alice.status_update(post["id"], "Hello @carol #second #third", media_ids=[media["id"]])
    for api in (bob, carol):
        seen = entry(api, post["id"])
        assert sorted(t["name"] for t in seen["tags"]) == ["second", "third"]
        assert [m["username"] for m in seen["mentions"]] == ["carol"]
        assert "#second" in seen["content"] or "second" in seen["content"]
        assert seen["edited_at"] is not None

    # Counts and flags: carol favourites and boosts; bob bookmarks. Each sees only their own flags.
    carol.status_favourite(post["id"])
    carol.status_reblog(post["id"])
    bob.status_bookmark(post["id"])
    by_bob, by_carol = entry(bob, post["id"]), entry(carol, post["id"])
    assert by_bob["favourites_count"] == by_carol["favourites_count"] == 1
    assert by_bob["reblogs_count"] == by_carol["reblogs_count"] == 1
    assert (by_bob["favourited"], by_bob["reblogged"], by_bob["bookmarked"]) == (False, False, True)
    assert (by_carol["favourited"], by_carol["reblogged"], by_carol["bookmarked"]) == (True, True, False)
    carol.status_unfavourite(post["id"])
    assert entry(bob, post["id"])["favourites_count"] == 0
    assert entry(carol, post["id"])["favourited"] is False


def test_the_answer_to_a_write_shows_the_write(site):
    """A request that changes a status renders it in the same request: the answer shows the change,
    although the request caught up with the other processes' changes before making it and the status
    was kept from earlier reads."""
    alice, bob = site.api("alice"), site.api("bob")
    post = alice.status_post("Counting #answers")
    for _ in range(2):  # kept for both viewers
        entry(bob, post["id"])
        alice.status(post["id"])
    faved = bob.status_favourite(post["id"])
    assert (faved["favourited"], faved["favourites_count"]) == (True, 1)
    boosted = bob.status_reblog(post["id"])
    assert boosted["reblog"]["reblogs_count"] == 1 and boosted["reblog"]["favourites_count"] == 1
    edited = alice.status_update(post["id"], "Counted #again")
    assert "Counted" in edited["content"] and [t["name"] for t in edited["tags"]] == ["again"]
    assert edited["favourites_count"] == 1
    unfaved = bob.status_unfavourite(post["id"])
    assert (unfaved["favourited"], unfaved["favourites_count"]) == (False, 0)
    pinned = alice.status_pin(post["id"])
    assert pinned["pinned"] is True and pinned["content"] == edited["content"]
    poll = alice.status_post("Which?", poll=alice.make_poll(["x", "y"], expires_in=3600))
    for _ in range(2):
        entry(bob, poll["id"])
    voted = bob.poll_vote(poll["poll"]["id"], [1])
    assert [o["votes_count"] for o in voted["options"]] == [0, 1] and voted["own_votes"] == [1]
    assert entry(bob, poll["id"])["poll"]["votes_count"] == 1
    renamed = alice.account_update_credentials(display_name="Alice Answered")
    assert renamed["display_name"] == "Alice Answered"
    assert alice.status(post["id"])["account"]["display_name"] == "Alice Answered"


def test_renames_polls_and_deletions_show_at_once(site):
    alice, bob = site.api("alice"), site.api("bob")
    post = alice.status_post("Which one? #poll", poll=alice.make_poll(["red", "blue"], expires_in=3600))
    assert entry(bob, post["id"])["account"]["display_name"] != "Alice Renamed"
    alice.account_update_credentials(display_name="Alice Renamed")
    assert entry(bob, post["id"])["account"]["display_name"] == "Alice Renamed"

    bob.poll_vote(post["poll"]["id"], [1])
    seen = entry(bob, post["id"])
    assert seen["poll"]["votes_count"] == 1 and seen["poll"]["own_votes"] == [1]
    assert entry(alice, post["id"])["poll"]["own_votes"] == []  # (its author counts as having voted)

    alice.status_delete(post["id"])
    assert all(s["id"] != post["id"] for s in bob.timeline_home(limit=40))
    assert requests.get(f"{site.inst.base_url}/api/v1/statuses/{post['id']}", headers=site.auth("bob"),
                        timeout=10).status_code == 404


def test_a_change_through_another_process_shows_at_once(site):
    """A second process serving the same database: an edit made there shows in the next timeline
    read from the first process (the cached parts are keyed by the status's version, so no process
    can serve an older one), and the other way round."""
    first = site.inst
    second = Instance(first.data_dir, {"CROSSTALK_DOMAIN": first.domain, "CROSSTALK_DATABASE_URL": first.database_url,
                                       "CROSSTALK_PASSWORD_GRANT": "true"})
    second.log_path = first.data_dir.parent / "second.log"
    alice_here, bob_here = site.api("alice"), site.api("bob")
    post = alice_here.status_post("Before #old")
    assert [t["name"] for t in entry(bob_here, post["id"])["tags"]] == ["old"]
    try:
        second.start()
        auth = {**site.auth("alice"), "Host": first.domain}
        edited = requests.put(f"http://127.0.0.1:{second.port}/api/v1/statuses/{post['id']}", headers=auth,
                              json={"status": "After #new"}, timeout=10)
        assert edited.status_code == 200, edited.text
        assert [t["name"] for t in entry(bob_here, post["id"])["tags"]] == ["new"]

        there = requests.get(f"http://127.0.0.1:{second.port}/api/v1/timelines/home",
                             headers={**site.auth("bob"), "Host": first.domain}, timeout=10).json()
        assert [t["name"] for t in next(s for s in there if s["id"] == post["id"])["tags"]] == ["new"]
        alice_here.status_update(post["id"], "Again #newest")
        there = requests.get(f"http://127.0.0.1:{second.port}/api/v1/timelines/home",
                             headers={**site.auth("bob"), "Host": first.domain}, timeout=10).json()
        assert [t["name"] for t in next(s for s in there if s["id"] == post["id"])["tags"]] == ["newest"]

        # A favourite, a boost and a rename made through the second process show in the first's next
        # timeline, and the other way round.
        second_url = f"http://127.0.0.1:{second.port}"
        bob_there = {**site.auth("bob"), "Host": first.domain}
        for action in ("favourite", "reblog", "bookmark"):
            requests.post(f"{second_url}/api/v1/statuses/{post['id']}/{action}", headers=bob_there,
                          timeout=10).raise_for_status()
        seen = entry(bob_here, post["id"])
        assert (seen["favourited"], seen["reblogged"], seen["bookmarked"]) == (True, True, True)
        assert (seen["favourites_count"], seen["reblogs_count"]) == (1, 1)
        requests.patch(f"{second_url}/api/v1/accounts/update_credentials", headers=auth,
                       data={"display_name": "Alice From There"}, timeout=10).raise_for_status()
        assert entry(bob_here, post["id"])["account"]["display_name"] == "Alice From There"
        bob_here.status_unfavourite(post["id"])
        there = requests.get(f"{second_url}/api/v1/timelines/home", headers=bob_there, timeout=10).json()
        seen_there = next(s for s in there if s["id"] == str(post["id"]))
        assert (seen_there["favourited"], seen_there["favourites_count"]) == (False, 0)
        alice_here.status_delete(post["id"])
        there = requests.get(f"{second_url}/api/v1/timelines/home", headers=bob_there, timeout=10).json()
        assert all(str(post["id"]) not in (s["id"], (s["reblog"] or {}).get("id")) for s in there)
    finally:
        second.stop()


def test_viewer_flags_pins_counts_and_notifications_show_at_once(site):
    alice, bob, carol = site.api("alice"), site.api("bob"), site.api("carol")
    post = alice.status_post("Flags and counts")
    for _ in range(2):
        seen = entry(bob, post["id"])
        assert (seen["favourited"], seen["reblogged"], seen["bookmarked"]) == (False, False, False)
    bob.status_favourite(post["id"])
    bob.status_bookmark(post["id"])
    bob.status_reblog(post["id"])
    for name in ("bob", "carol"):
        seen = entry(site.api(name), post["id"])
        mine = name == "bob"
        assert (seen["favourited"], seen["reblogged"], seen["bookmarked"]) == (mine, mine, mine)
        assert (seen["favourites_count"], seen["reblogs_count"]) == (1, 1)
        assert single(site, name, post["id"])["favourites_count"] == 1
    # bob's boost is in carol's feed? (carol does not follow bob); the boost in bob's own feed shows
    # the original with bob's flags
    boost = next(s for s in bob.timeline_home(limit=40) if s["reblog"] and s["reblog"]["id"] == post["id"])
    assert boost["reblog"]["favourited"] is True and boost["reblog"]["reblogs_count"] == 1
    # alice's notification about the favourite shows the status as it is now
    note = wait_for(lambda: [n for n in alice.notifications() if n["type"] == "favourite"
                             and n["status"]["id"] == post["id"]])[0]
    assert note["status"]["favourites_count"] == 1 and note["status"]["reblogs_count"] == 1

    # pins show for their author only
    alice.status_pin(post["id"])
    assert entry(alice, post["id"])["pinned"] is True
    assert "pinned" not in raw_entry(site, "bob", post["id"])
    alice.status_unpin(post["id"])
    assert entry(alice, post["id"])["pinned"] is False

    bob.status_unfavourite(post["id"])
    bob.status_unbookmark(post["id"])
    bob.status_unreblog(post["id"])
    seen = entry(bob, post["id"])
    assert (seen["favourited"], seen["reblogged"], seen["bookmarked"]) == (False, False, False)
    assert (seen["favourites_count"], seen["reblogs_count"]) == (0, 0)
    assert entry(carol, post["id"])["favourites_count"] == 0


def test_a_viewer_with_more_flags_than_are_kept_whole_sees_each_one_at_once(site):
    """A viewer's flags are kept whole up to viewers.EVERY_FLAG_KEPT (256); gina has 300 favourites,
    written by another writer of the database, so only her last pages' flags are kept: on any page,
    old or new, each flag shows, and each change shows at once."""
    alice, gina = site.api("alice"), site.api("gina")
    alice_id, gina_id = int(alice.me()["id"]), int(gina.me()["id"])
    gina.account_follow(alice_id)
    first, count, now = 7_000_000_000, 300, "2026-01-01T00:00:00.000Z"
    site.inst.sql(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
        " INSERT INTO statuses (id, uri, url, account_id, local, content, source_text, spoiler_text, visibility,"
        " sensitive, created_at) SELECT CAST(? AS BIGINT) + i, CAST(? AS TEXT) || CAST(i AS TEXT),"
        " CAST(? AS TEXT) || CAST(i AS TEXT), CAST(? AS BIGINT), 1, '<p>old</p>', '', '', 'public', 0, ? FROM n",
        (count - 1, first, f"{site.inst.base_url}/old/", f"{site.inst.base_url}/old/", alice_id, now))
    site.inst.sql("INSERT INTO favourites (id, account_id, status_id, created_at)"
                  " SELECT id, CAST(? AS BIGINT), id, ? FROM statuses WHERE id >= ? AND id < ?",
                  (gina_id, now, first, first + count))
    old = gina.account_statuses(alice_id, max_id=first + count, limit=40)
    assert len(old) == 40 and all(s["favourited"] for s in old)
    assert single(site, "gina", str(first + 5))["favourited"] is True
    assert single(site, "bob", str(first + 5))["favourited"] is False

    post = alice.status_post("Flags past the kept whole")
    assert entry(gina, post["id"])["favourited"] is False
    gina.status_favourite(post["id"])
    assert entry(gina, post["id"])["favourited"] is True
    assert gina.account_statuses(alice_id, max_id=first + count, limit=2)[0]["favourited"] is True
    gina.status_unfavourite(post["id"])
    assert entry(gina, post["id"])["favourited"] is False
    gina.status_unfavourite(first + count - 1)
    assert gina.account_statuses(alice_id, max_id=first + count, limit=2)[0]["favourited"] is False


def test_reactions_and_poll_votes_are_per_viewer(site):
    alice, bob, carol = site.api("alice"), site.api("bob"), site.api("carol")
    post = alice.status_post("React and vote", poll=alice.make_poll(["yes", "no"], expires_in=3600))
    entry(bob, post["id"])
    reacted = requests.put(f"{site.inst.base_url}/api/v1/pleroma/statuses/{post['id']}/reactions/👍",
                           headers=site.auth("bob"), timeout=10)
    assert reacted.status_code == 200, reacted.text
    assert entry(bob, post["id"])["pleroma"]["emoji_reactions"] == [{"name": "👍", "count": 1, "me": True}]
    assert entry(carol, post["id"])["pleroma"]["emoji_reactions"] == [{"name": "👍", "count": 1, "me": False}]
    carol.poll_vote(post["poll"]["id"], [0])
    by_carol, by_bob = entry(carol, post["id"])["poll"], entry(bob, post["id"])["poll"]
    assert (by_carol["voted"], by_carol["own_votes"], by_carol["votes_count"]) == (True, [0], 1)
    assert (by_bob["voted"], by_bob["own_votes"], by_bob["votes_count"]) == (False, [], 1)
    requests.delete(f"{site.inst.base_url}/api/v1/pleroma/statuses/{post['id']}/reactions/👍",
                    headers=site.auth("bob"), timeout=10).raise_for_status()
    assert entry(carol, post["id"])["pleroma"]["emoji_reactions"] == []


def test_timelines_answer_what_the_status_endpoint_renders(site):
    """The timelines splice kept bytes; the single-status endpoint renders dicts: the same JSON."""
    alice, bob = site.api("alice"), site.api("bob")
    media = alice.media_post(png(), mime_type="image/png", description="same")
    posts = [alice.status_post("Plain one"),
             alice.status_post("With media #pic @bob", media_ids=[media["id"]], sensitive=True, spoiler_text="cw"),
             alice.status_post("A poll", poll=alice.make_poll(["a", "b"], expires_in=3600))]
    bob.status_favourite(posts[0]["id"])
    bob.status_reblog(posts[1]["id"])
    alice.status_pin(posts[2]["id"])
    for name in ("alice", "bob", "carol"):
        for _ in range(2):  # cold, then from the kept entries
            listed = {s["id"]: s for s in raw_home(site, name)}
            for post in posts:
                if str(post["id"]) in listed:
                    assert without_volatile(listed[str(post["id"])]) == without_volatile(single(site, name, post["id"]))
            for s in listed.values():
                if s["reblog"]:
                    assert without_volatile(s) == without_volatile(single(site, name, s["id"]))


def raw_get(site, name: str, path: str):
    answer = requests.get(f"{site.inst.base_url}{path}", headers=site.auth(name), timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_thread_context_and_profiles_answer_what_the_status_endpoint_renders(site):
    """A thread's context and a profile's statuses are spliced from kept bytes as the timelines are,
    empty lists included."""
    alice, bob = site.api("alice"), site.api("bob")
    root = alice.status_post("Root of a thread #ctx")
    middle = bob.status_post("@alice a reply", in_reply_to_id=root["id"])
    leaf = alice.status_post("@bob a reply to the reply", in_reply_to_id=middle["id"])
    lone = alice.status_post("Nobody answers this one")
    bob.status_favourite(leaf["id"])
    boost = bob.status_reblog(root["id"])
    for name in ("alice", "bob", "carol"):
        for _ in range(2):  # cold, then from the kept entries
            context = raw_get(site, name, f"/api/v1/statuses/{middle['id']}/context")
            assert list(context) == ["ancestors", "descendants"]
            assert [without_volatile(s) for s in context["ancestors"]] == [
                without_volatile(single(site, name, root["id"]))]
            assert [without_volatile(s) for s in context["descendants"]] == [
                without_volatile(single(site, name, leaf["id"]))]
            assert raw_get(site, name, f"/api/v1/statuses/{lone['id']}/context") == {"ancestors": [], "descendants": []}
            profile = raw_get(site, name, f"/api/v1/accounts/{site.api('bob').me()['id']}/statuses?limit=5")
            assert [s["id"] for s in profile][:2] == [str(boost["id"]), str(middle["id"])]
            assert profile[0]["reblog"]["id"] == str(root["id"])
            for s in profile[:2]:
                assert without_volatile(s) == without_volatile(single(site, name, s["id"]))
            assert raw_get(site, name, f"/api/v1/accounts/{site.api('gina').me()['id']}/statuses") == []


def test_mutes_blocks_domain_blocks_and_filters_apply_at_once(site):
    alice, dave = site.api("alice"), site.api("dave")
    dave.account_follow(alice.me()["id"])
    post = alice.status_post("Only some may see this: rhubarb")
    entry(dave, post["id"])
    alice_id = alice.me()["id"]

    dave.account_mute(alice_id)
    assert post["id"] not in home_ids(site, "dave")
    dave.account_unmute(alice_id)
    assert post["id"] in home_ids(site, "dave")

    # A filter: warn, then hide.
    made = requests.post(f"{site.inst.base_url}/api/v2/filters", headers=site.auth("dave"), timeout=10,
                         json={"title": "veg", "context": ["home"], "filter_action": "warn",
                               "keywords_attributes": [{"keyword": "rhubarb"}]})
    assert made.status_code == 200, made.text
    assert [r["filter"]["title"] for r in entry(dave, post["id"])["filtered"]] == ["veg"]
    assert entry(site.api("bob"), post["id"])["filtered"] == []
    requests.put(f"{site.inst.base_url}/api/v2/filters/{made.json()['id']}", headers=site.auth("dave"), timeout=10,
                 json={"filter_action": "hide"}).raise_for_status()
    assert post["id"] not in home_ids(site, "dave")
    requests.delete(f"{site.inst.base_url}/api/v2/filters/{made.json()['id']}", headers=site.auth("dave"),
                    timeout=10).raise_for_status()
    assert entry(dave, post["id"])["filtered"] == []

    # A domain block: a remote account's status in dave's feed (written as the inbox would).
    inst = site.inst
    status_id = remote_status_in_feed(inst, "far", int(dave.me()["id"]), int(post["id"]) + 1)
    assert raw_entry(site, "dave", status_id)["account"]["acct"] == "far@far.example"
    dave.domain_block("far.example")
    assert str(status_id) not in [s["id"] for s in raw_home(site, "dave")]
    dave.domain_unblock("far.example")
    assert str(status_id) in [s["id"] for s in raw_home(site, "dave")]

    dave.account_block(alice_id)
    assert post["id"] not in home_ids(site, "dave")
    assert requests.get(f"{inst.base_url}/api/v1/statuses/{post['id']}", headers=site.auth("dave"),
                        timeout=10).status_code == 404


def test_avatar_changes_and_writes_by_any_other_writer_show_at_once(site):
    """An avatar upload through the API, and changes written straight into the database (as the inbox of
    any process applies a remote Update): the next timeline shows each."""
    alice, bob = site.api("alice"), site.api("bob")
    post = alice.status_post("Before the update #one", poll=alice.make_poll(["x", "y"], expires_in=3600))
    before = entry(bob, post["id"])
    alice.account_update_credentials(avatar=png(), avatar_mime_type="image/png")
    after = entry(bob, post["id"])
    assert after["account"]["avatar"] != before["account"]["avatar"]
    assert single(site, "bob", post["id"])["account"]["avatar"] == after["account"]["avatar"]

    inst = site.inst
    inst.sql("UPDATE statuses SET content = '<p>Updated elsewhere</p>', edited_at = ? WHERE id = ?",
             ("2026-01-02T00:00:00.000Z", int(post["id"])))
    assert entry(bob, post["id"])["content"] == "<p>Updated elsewhere</p>"
    inst.sql("UPDATE accounts SET display_name = 'Renamed Elsewhere' WHERE id = ?", (int(post["account"]["id"]),))
    assert entry(bob, post["id"])["account"]["display_name"] == "Renamed Elsewhere"
    inst.sql("UPDATE polls SET tallies = '[5, 2]', votes_count = 7, voters_count = 7 WHERE status_id = ?",
             (int(post["id"]),))
    poll = entry(bob, post["id"])["poll"]
    assert [o["votes_count"] for o in poll["options"]] == [5, 2] and poll["votes_count"] == 7
    inst.sql("UPDATE media_attachments SET status_id = ? WHERE id = (SELECT max(id) FROM media_attachments)",
             (int(post["id"]),))
    assert len(entry(bob, post["id"])["media_attachments"]) == 1


def test_a_viewers_kept_state_follows_every_writer_and_the_clock(site):
    """What a process keeps of a viewer (hidden accounts, filters, flags) is checked against the viewer's
    version with every page: a block of the viewer by someone else, rows written straight into the
    database (as another process's inbox would), an account first seen on a domain the viewer blocked,
    and a timed mute and a timed filter that end without any write all show in the next page; and the
    flags stay right across pages beyond what is kept."""
    erin, frank = site.api("erin"), site.api("frank")
    erin_id, frank_id = int(erin.me()["id"]), int(frank.me()["id"])
    erin.account_follow(frank_id)
    post = frank.status_post("For erin: parsnip #roots")
    for _ in range(2):  # read, then kept
        assert entry(erin, post["id"])["favourited"] is False
    inst, now = site.inst, "2026-01-01T00:00:00.000Z"

    def public_ids() -> list[int]:
        return [s["id"] for s in erin.timeline_public(limit=40)]

    def tag_ids() -> list[int]:
        return [s["id"] for s in erin.timeline_hashtag("roots")]
    for _ in range(2):
        assert post["id"] in public_ids()
        assert post["id"] in tag_ids()

    # Written by another writer of the database: a block of erin by frank (each timeline, erin's
    # reply's thread and frank's profile the first page read after the change, so that none sees the
    # state another page read), erin's favourite.
    reply = erin.status_post("Parsnip soup, then", in_reply_to_id=post["id"])

    def thread_ids() -> list[int]:
        return [s["id"] for s in erin.status_context(reply["id"])["ancestors"]]
    assert post["id"] in thread_ids()
    def profile_ids() -> list[int]:
        return [s["id"] for s in erin.account_statuses(frank_id)]
    assert post["id"] in profile_ids()
    for page_ids in (lambda: home_ids(site, "erin"), public_ids, tag_ids, thread_ids, profile_ids):
        inst.sql("INSERT INTO blocks (id, account_id, target_account_id, created_at) VALUES (?, ?, ?, ?)",
                 (int(post["id"]) + 11, frank_id, erin_id, now))
        assert post["id"] not in page_ids()
        inst.sql("DELETE FROM blocks WHERE account_id = ? AND target_account_id = ?", (frank_id, erin_id))
        assert post["id"] in page_ids()
    inst.sql("INSERT INTO favourites (id, account_id, status_id, created_at) VALUES (?, ?, ?, ?)",
             (int(post["id"]) + 12, erin_id, int(post["id"]), now))
    assert raw_entry(site, "erin", post["id"])["favourited"] is True
    inst.sql("DELETE FROM favourites WHERE account_id = ? AND status_id = ?", (erin_id, int(post["id"])))
    assert raw_entry(site, "erin", post["id"])["favourited"] is False

    # A domain blocked first, its account seen afterwards (with a status in erin's feed).
    erin.domain_block("near.example")
    raw_home(site, "erin")  # the state kept without the account
    status_id = remote_status_in_feed(inst, "near", erin_id, int(post["id"]) + 13)
    assert str(status_id) not in [s["id"] for s in raw_home(site, "erin")]
    erin.domain_unblock("near.example")
    assert str(status_id) in [s["id"] for s in raw_home(site, "erin")]

    # A timed mute and a timed filter end by themselves.
    erin.account_mute(frank_id, duration=2)
    assert post["id"] not in home_ids(site, "erin")
    wait_for(lambda: post["id"] in home_ids(site, "erin"))
    made = requests.post(f"{inst.base_url}/api/v2/filters", headers=site.auth("erin"), timeout=10,
                         json={"title": "roots", "context": ["home"], "filter_action": "hide", "expires_in": 2,
                               "keywords_attributes": [{"keyword": "parsnip"}]})
    assert made.status_code == 200, made.text
    assert post["id"] not in home_ids(site, "erin")
    wait_for(lambda: post["id"] in home_ids(site, "erin"))

    # Flags over more statuses than a viewer's kept state holds: right on every page, read twice.
    posts = [frank.status_post(f"Numbered {n}") for n in range(60)]
    liked = {p["id"] for p in posts[::7]}
    for p in posts[::7]:
        erin.status_favourite(p["id"])
    wait_for(lambda: posts[-1]["id"] in home_ids(site, "erin"))
    for _ in range(2):
        seen, max_id = [], None
        while True:
            page = erin.timeline_home(limit=40, max_id=max_id)
            if not page:
                break
            seen += page
            max_id = page[-1]["id"]
        mine = {s["id"]: s["favourited"] for s in seen if s["id"] in {p["id"] for p in posts}}
        assert len(mine) == len(posts)
        assert {sid for sid, favourited in mine.items() if favourited} == liked


def test_the_signed_in_accounts_own_record_follows_every_writer(site):
    """The record of the account behind a token (kept with the rendering caches) is what the database
    holds now: after a change through the API, and after one written straight into the database as
    another process would."""
    dave = site.api("dave")
    assert dave.account_update_credentials(display_name="Dave One")["display_name"] == "Dave One"
    assert dave.account_verify_credentials()["display_name"] == "Dave One"
    site.inst.sql("UPDATE accounts SET display_name = 'Dave Elsewhere', locked = 1 WHERE id = ?",
                  (int(dave.me()["id"]),))
    me = dave.account_verify_credentials()
    assert (me["display_name"], me["locked"]) == ("Dave Elsewhere", True)
    assert dave.account_update_credentials(locked=False)["locked"] is False
    assert dave.account_verify_credentials()["locked"] is False


def test_kept_entries_are_sized_as_they_weigh_and_hidden_from_the_garbage_collector(site):
    """A rendering cache's size setting bounds what its entries really take: each entry's own estimate
    is within a quarter of what tracemalloc counts for it (its record, parts and JSON). And the
    entries and their records are not tracked by the garbage collector (a full collection would walk
    every kept entry again, and the caches keep tens of thousands)."""
    import gc
    import tracemalloc

    from server.services import loaders
    from server.storage import statuses as status_store

    alice = site.api("alice")
    bob_id = site.api("bob").me()["id"]
    words = "the quarterly roadmap review moves to Thursday, with notes from every team and the partners".split()
    posted = []
    for n in range(40):
        text = " ".join(words[(n + k) % len(words)] for k in range(12 + n % 30))
        extra = f" @bob #weekly{n % 3}" if n % 2 else ""
        posted.append(int(alice.status_post(f"{text}{extra} ({n})")["id"]))

    async def measure(state):
        # Once first, so that what the database driver keeps (prepared statements, buffers) is not counted.
        await loaders._status_entries(state, await status_store.get_many_versioned(state.db, posted))
        await loaders._account_entries(state, [int(bob_id)], 0)
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        entries = await loaders._status_entries(state, await status_store.get_many_versioned(state.db, posted))
        accounts = await loaders._account_entries(state, [int(bob_id)], 0)
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        return entries, accounts, used

    entries, accounts, used = site.inst.admin(measure)
    assert len(entries) == len(posted)
    estimated = sum(e.size for e in entries.values()) + sum(a.size for a in accounts.values())
    assert 0.75 * used <= estimated <= 1.25 * used, (estimated, used)
    for e in [*entries.values(), *accounts.values()]:
        assert not gc.is_tracked(e)
    assert not any(gc.is_tracked(e.status) for e in entries.values())
    assert not any(gc.is_tracked(a.account) for a in accounts.values())

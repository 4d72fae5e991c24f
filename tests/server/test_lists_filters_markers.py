"""Lists, filters (v2 and v1), markers and followed hashtags, driven by Mastodon.py against a real instance."""

from __future__ import annotations

import time

import pytest
import requests
from mastodon import MastodonAPIError, MastodonNotFoundError

from tests.server.userpool import running_pool


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    yield from running_pool(tmp_path_factory, 14)


def eventually(check, timeout: float = 5.0):
    """The fan-out runs off the request path: poll until `check()` is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


def ids(statuses) -> list[str]:
    return [s["id"] for s in statuses]


def test_lists_members_timeline_replies_policy_and_exclusive(pool):
    instance = pool.instance
    alice, bob, carol, dora = pool.take(4)
    bob_id, carol_id, dora_id = bob.me()["id"], carol.me()["id"], dora.me()["id"]
    alice.account_follow(bob_id)
    alice.account_follow(carol_id)

    work = alice.list_create("Work")
    assert work["title"] == "Work" and work["replies_policy"] == "list" and work["exclusive"] is False
    assert ids(alice.lists()) == [work["id"]]
    alice.list_accounts_add(work["id"], [bob_id])
    with pytest.raises(MastodonNotFoundError):  # only followed accounts can join a list
        alice.list_accounts_add(work["id"], [dora_id])
    assert ids(alice.list_accounts(work["id"])) == [bob_id]
    assert ids(alice.account_lists(bob_id)) == [work["id"]]
    assert alice.account_lists(carol_id) == []

    by_bob = bob.status_post("standup at ten")
    by_carol = carol.status_post("lunch?")
    assert eventually(lambda: by_bob["id"] in ids(alice.timeline_list(work["id"])))
    assert by_carol["id"] not in ids(alice.timeline_list(work["id"]))

    # replies policy "list": a reply to someone outside the list stays out; "followed" lets it in.
    reply_out = bob.status_post("@carol sure", in_reply_to_id=by_carol["id"])
    self_reply = bob.status_post("and coffee", in_reply_to_id=by_bob["id"])
    assert eventually(lambda: self_reply["id"] in ids(alice.timeline_list(work["id"])))
    assert reply_out["id"] not in ids(alice.timeline_list(work["id"]))
    alice.list_update(work["id"], "Work", replies_policy="followed")
    reply_in = bob.status_post("@carol see you", in_reply_to_id=by_carol["id"])
    assert eventually(lambda: reply_in["id"] in ids(alice.timeline_list(work["id"])))
    alice.list_update(work["id"], "Work", replies_policy="none")
    reply_none = bob.status_post("@carol one more", in_reply_to_id=by_carol["id"])
    later = bob.status_post("not a reply")
    assert eventually(lambda: later["id"] in ids(alice.timeline_list(work["id"])))
    assert reply_none["id"] not in ids(alice.timeline_list(work["id"]))

    # exclusive: the members' new posts leave the home timeline and stay in the list.
    assert by_bob["id"] in ids(alice.timeline_home())
    alice.list_update(work["id"], "Work", replies_policy="list", exclusive=True)
    exclusive_post = bob.status_post("only in the list")
    assert eventually(lambda: exclusive_post["id"] in ids(alice.timeline_list(work["id"])))
    assert exclusive_post["id"] not in ids(alice.timeline_home())
    assert ids(bob.timeline_home())[0] == exclusive_post["id"]  # the author's own home is untouched

    # others cannot see or change the list; bad input is refused
    for call in (lambda: bob.list(work["id"]), lambda: bob.timeline_list(work["id"]),
                 lambda: bob.list_delete(work["id"])):
        with pytest.raises(MastodonNotFoundError):
            call()
    with pytest.raises(MastodonAPIError, match="Title can't be blank"):
        alice.list_create("   ")
    answer = requests.post(f"{instance.base_url}/api/v1/lists", data={"title": "x", "replies_policy": "all"},
                           headers={"Authorization": f"Bearer {alice.access_token}"}, timeout=10)
    assert answer.status_code == 422 and "Replies policy" in answer.json()["error"]

    # removing a member or unfollowing takes their posts out of the list
    alice.list_accounts_add(work["id"], [carol_id])
    assert eventually(lambda: by_carol["id"] in ids(alice.timeline_list(work["id"])))
    alice.list_accounts_delete(work["id"], [carol_id])
    assert by_carol["id"] not in ids(alice.timeline_list(work["id"]))
    alice.account_unfollow(bob_id)
    assert alice.list_accounts(work["id"]) == [] and alice.timeline_list(work["id"]) == []
    alice.list_delete(work["id"])
    assert alice.lists() == []


def test_filters_v2_warn_hide_contexts_statuses_and_expiry(pool):
    alice, bob = pool.take(2)
    alice_acct = alice.me()
    alice.account_follow(bob.me()["id"])

    hide = alice.create_filter_v2("Spoilers", ["home", "notifications"], "hide",
                                  keywords_attributes=[{"keyword": "finale", "whole_word": True}])
    assert hide["filter_action"] == "hide" and hide["context"] == ["home", "notifications"]
    assert [k["keyword"] for k in hide["keywords"]] == ["finale"] and hide["keywords"][0]["whole_word"]
    warn = alice.create_filter_v2("Sport", ["home", "public"], "warn",
                                  keywords_attributes=[{"keyword": "match", "whole_word": False}])

    spoiler = bob.status_post("The finale was wild")
    partial = bob.status_post("Finales are not finale-free")  # whole word: 'finale-free' matches at 'finale'
    wordy = bob.status_post("finalement, non")  # not a whole word match
    sport = bob.status_post("What a rematch!")  # not whole-word: matches inside the word
    mention = bob.status_post(f"@{alice_acct['username']} no spoilers: the finale...")
    assert eventually(lambda: sport["id"] in ids(alice.timeline_home()))
    home = {s["id"]: s for s in alice.timeline_home()}
    assert spoiler["id"] not in home and partial["id"] not in home and mention["id"] not in home
    assert wordy["id"] in home and home[wordy["id"]]["filtered"] == []
    result = home[sport["id"]]["filtered"]
    assert len(result) == 1 and result[0]["keyword_matches"] == ["match"] and result[0]["status_matches"] is None
    assert result[0]["filter"]["id"] == warn["id"] and result[0]["filter"]["filter_action"] == "warn"

    # the public timeline is not in the hide filter's contexts: the status shows, marked
    public = {s["id"]: s for s in alice.timeline_public(local=True)}
    assert public[spoiler["id"]]["filtered"][0]["filter"]["title"] == "Spoilers"
    assert all(n.get("status", {}).get("id") != mention["id"] for n in alice.notifications())
    assert bob.status(spoiler["id"])["filtered"] == []  # filters belong to their owner

    # status filters and keyword management
    added = alice.add_filter_status_v2(warn["id"], wordy["id"])
    assert added["status_id"] == wordy["id"]
    marked = {s["id"]: s for s in alice.timeline_home()}[wordy["id"]]["filtered"]
    assert marked[0]["status_matches"] == [wordy["id"]] and marked[0]["keyword_matches"] is None
    assert [s["id"] for s in alice.filter_statuses_v2(warn["id"])] == [added["id"]]
    keyword = alice.add_filter_keyword_v2(warn["id"], "goal", whole_word=True)
    assert sorted(k["keyword"] for k in alice.filter_keywords_v2(warn["id"])) == ["goal", "match"]
    alice.delete_filter_keyword_v2(keyword["id"])
    alice.delete_filter_status_v2(added["id"])
    assert alice.filter_statuses_v2(warn["id"]) == []

    # update keeps what is not given, edits and destroys keywords by id
    match_kw = alice.filter_keywords_v2(warn["id"])[0]
    updated = alice.update_filter_v2(warn["id"], keywords_attributes=[
        {"id": match_kw["id"], "_destroy": True}, {"keyword": "rematch"}])
    assert updated["title"] == "Sport" and [k["keyword"] for k in updated["keywords"]] == ["rematch"]
    assert sorted(f["id"] for f in alice.filters_v2()) == sorted([hide["id"], warn["id"]])
    with pytest.raises(MastodonNotFoundError):
        bob.filter_v2(warn["id"])

    # expiry: a filter that has expired no longer applies
    alice.update_filter_v2(hide["id"], expires_in=1)
    time.sleep(1.2)
    assert spoiler["id"] in ids(alice.timeline_home())

    # bad input
    for kwargs, message in (({"title": "", "context": ["home"], "filter_action": "warn"}, "Title"),
                            ({"title": "x", "context": ["kitchen"], "filter_action": "warn"}, "context"),
                            ({"title": "x", "context": ["home"], "filter_action": "explode"}, "Filter action")):
        with pytest.raises(MastodonAPIError, match=message):
            alice.create_filter_v2(**kwargs)
    alice.delete_filter_v2(warn["id"])
    with pytest.raises(MastodonNotFoundError):
        alice.filter_v2(warn["id"])


def test_filters_v1_map_onto_keywords(pool):
    alice, bob = pool.take(2)
    alice.account_follow(bob.me()["id"])
    created = alice.filter_create("crypto", ["home", "thread"], irreversible=True, whole_word=True)
    assert created["phrase"] == "crypto" and created["irreversible"] is True and created["context"] == ["home", "thread"]
    v2 = alice.filters_v2()
    assert len(v2) == 1 and v2[0]["filter_action"] == "hide" and v2[0]["keywords"][0]["id"] == created["id"]

    root = bob.status_post("thread start")
    hidden = bob.status_post("buy crypto now", in_reply_to_id=root["id"])
    shown = bob.status_post("no coins here", in_reply_to_id=root["id"])
    assert eventually(lambda: shown["id"] in ids(alice.timeline_home()))
    assert hidden["id"] not in ids(alice.timeline_home())
    assert ids(alice.status_context(root["id"])["descendants"]) == [shown["id"]]

    changed = alice.filter_update(created["id"], phrase="coins", irreversible=False)
    assert changed["phrase"] == "coins" and changed["irreversible"] is False
    assert hidden["id"] in ids(alice.timeline_home())
    marked = {s["id"]: s for s in alice.timeline_home()}[shown["id"]]
    assert marked["filtered"][0]["keyword_matches"] == ["coins"]
    assert [f["id"] for f in alice.filters()] == [created["id"]]

    # a v2 filter with several keywords cannot have its filter-wide settings changed through v1
    alice.add_filter_keyword_v2(v2[0]["id"], "token")
    with pytest.raises(MastodonAPIError, match="more than one filter keyword"):
        alice.filter_update(created["id"], context=["public"])
    alice.filter_delete(created["id"])
    assert [f["phrase"] for f in alice.filters()] == ["token"]
    with pytest.raises(MastodonNotFoundError):
        alice.filter(created["id"])


def test_markers(pool):
    instance = pool.instance
    alice, bob = pool.take(2)
    assert alice.markers_get(["home", "notifications"]) == {}
    first = alice.markers_set("home", "111")
    assert first["home"]["last_read_id"] == "111" and first["home"]["version"] == 1
    second = alice.markers_set(["home", "notifications"], ["222", "5"])
    assert second["home"]["version"] == 2 and second["notifications"]["version"] == 1
    got = alice.markers_get(["home", "notifications"])
    assert got["home"]["last_read_id"] == "222" and got["notifications"]["last_read_id"] == "5"
    assert got["home"]["updated_at"]
    assert list(alice.markers_get("home")) == ["home"]
    assert bob.markers_get(["home"]) == {}
    answer = requests.post(f"{instance.base_url}/api/v1/markers", json={"home": {"last_read_id": "abc"}},
                           headers={"Authorization": f"Bearer {alice.access_token}"}, timeout=10)
    assert answer.status_code == 422 and "last_read_id" in answer.json()["error"]


def test_followed_tags_feed_the_home_timeline(pool):
    alice, carol = pool.take(2)
    tag = alice.tag("Python")
    assert tag["name"] == "Python" and tag["following"] is False and len(tag["history"]) == 7
    followed = alice.tag_follow("Python")
    assert followed["following"] is True
    assert [t["name"] for t in alice.followed_tags()] == ["Python"]

    tagged = carol.status_post("Hello #python friends")
    quiet = carol.status_post("unlisted #python", visibility="unlisted")
    untagged = carol.status_post("no tags here")
    assert eventually(lambda: tagged["id"] in ids(alice.timeline_home()))
    home = ids(alice.timeline_home())
    assert quiet["id"] not in home and untagged["id"] not in home
    shown = alice.tag("python")
    assert shown["following"] is True and shown["history"][0]["uses"] == "2"

    assert alice.tag_unfollow("python")["following"] is False
    assert alice.followed_tags() == []
    after = carol.status_post("more #python")
    time.sleep(0.3)
    assert after["id"] not in ids(alice.timeline_home())
    with pytest.raises(MastodonNotFoundError):
        alice.tag("not-a-tag!")

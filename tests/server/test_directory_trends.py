"""The people directory (/api/v1/directory with department, title and location filters; `department:`
words in account search; group suggestions from one's department) and trends (tags, links and posts
from real counts, local-only and non-public posts kept out, admin review) — through Mastodon.py and
requests against one real instance."""

from __future__ import annotations

import time

import pytest
import requests
from mastodon import Mastodon, MastodonAPIError

from tests.server.shared_instance import start_site

USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "mod")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = start_site(tmp_path_factory.mktemp("dirtrends") / "a", USERS, {"CROSSTALK_TRENDS_CACHE_SECONDS": "60"},
                      admins=("mod",))
    yield site
    site.inst.dispose()


@pytest.fixture(scope="module")
def users(site):
    return {name: site.api(name) for name in USERS}


@pytest.fixture(scope="module")
def me(users):
    return {n: str(users[n].me()["id"]) for n in USERS}


def names(accounts):
    return [a["username"] for a in accounts]


def get(site, path, user=None, **query):
    headers = site.auth(user) if user else {}
    return requests.get(f"{site.inst.base_url}{path}", params=query, headers=headers, timeout=10)


def test_directory_orders_filters_and_hides(site, users, me):
    alice, bob, carol, dave, erin, frank, mod = (users[n] for n in USERS)
    alice.account_update_credentials(fields=[("Department", "Engineering"), ("Title", "Senior Engineer"),
                                             ("Location", "Berlin")])
    bob.account_update_credentials(fields=[("department", " engineering "), ("Job title", "Engineering Manager")])
    carol.account_update_credentials(fields=[("Department", "Sales"), ("Title", "Account Executive"),
                                             ("Location", "berlin")])
    dave.account_update_credentials(fields=[("Department", "Sales Engineering")])
    erin.account_update_credentials(fields=[("Department", "Engineering")], discoverable=False)
    for who in (carol, alice, bob):  # most recently active last: bob, then alice, then carol
        who.status_post(f"hello from {who.me()['username']}")
        time.sleep(0.01)

    listed = alice.directory(local=True, limit=80)
    assert names(listed)[:3] == ["bob", "alice", "carol"]  # order=active: latest post first
    assert "erin" not in names(listed)  # not discoverable
    newest = names(alice.directory(order="new", local=True, limit=80))
    assert newest.index("mod") < newest.index("alice")  # created last, listed first
    assert names(alice.directory(local=True, limit=2)) == ["bob", "alice"]
    assert names(alice.directory(local=True, offset=1, limit=2)) == ["alice", "carol"]
    # Anonymous visitors see the same listing (as in Mastodon).
    assert names(get(site, "/api/v1/directory", local="true").json())[:3] == ["bob", "alice", "carol"]
    # A boost is activity too (as in Mastodon): carol's boost of bob's post lists her first.
    carol.status_reblog(bob.account_statuses(me["bob"], limit=1)[0]["id"])
    assert names(alice.directory(local=True, limit=80))[:3] == ["carol", "bob", "alice"]

    # Department and location match the whole value in any case and spacing; a title any part of it.
    r = get(site, "/api/v1/directory", "carol", department="ENGINEERING")
    assert r.status_code == 200 and set(names(r.json())) == {"alice", "bob"}
    assert set(names(get(site, "/api/v1/directory", "carol", title="engineer").json())) == {"alice", "bob"}
    assert set(names(get(site, "/api/v1/directory", "carol", title="manager").json())) == {"bob"}
    assert set(names(get(site, "/api/v1/directory", "bob", location="Berlin").json())) == {"alice", "carol"}
    both = get(site, "/api/v1/directory", "bob", location="berlin", department="sales").json()
    assert names(both) == ["carol"]
    assert get(site, "/api/v1/directory", "bob", department="Marketing").json() == []

    # Blocks hide both ways; bad parameters are refused cleanly.
    carol.account_block(me["alice"])
    assert "carol" not in names(alice.directory(local=True, limit=80))
    assert "alice" not in names(carol.directory(local=True, limit=80))
    carol.account_unblock(me["alice"])
    for bad in ({"order": "random"}, {"offset": "-1"}, {"limit": "many"}, {"department": "x" * 300}):
        r = get(site, "/api/v1/directory", "alice", **bad)
        assert r.status_code == 422, bad

    # Account search: `department:` and `title:` words find colleagues, with the other words on names.
    found = alice.account_search("department:engineering", limit=40)
    assert set(names(found)) == {"alice", "bob"}
    assert names(alice.account_search('title:"account executive"')) == ["carol"]
    assert names(alice.account_search("department:engineering bo")) == ["bob"]
    assert names(alice.search_v2("department:sales", result_type="accounts")["accounts"]) == ["carol"]
    # A plain search still finds a field value anywhere.
    assert "dave" in names(alice.account_search("Sales Engineering"))


def test_group_suggestions_come_from_the_department(site, users, me):
    alice = users["alice"]
    r = requests.post(f"{site.inst.base_url}/api/v1/groups", headers=site.auth("bob"),
                      json={"display_name": "Platform guild", "note": "infra talk", "group_visibility": "everyone"},
                      timeout=10)
    assert r.status_code == 200, r.text
    platform = r.json()["id"]
    r = requests.post(f"{site.inst.base_url}/api/v1/groups", headers=site.auth("carol"),
                      json={"display_name": "Deal desk", "note": "sales"}, timeout=10)
    assert r.status_code == 200, r.text
    # alice (Engineering) follows nobody: bob is her department colleague, carol is not.
    suggested = get(site, "/api/v1/groups/suggestions", "alice").json()
    assert [g["id"] for g in suggested] == [platform]
    alice.account_follow(me["carol"])
    suggested = {g["id"] for g in get(site, "/api/v1/groups/suggestions", "alice").json()}
    assert platform in suggested and len(suggested) == 2  # now carol's group too (someone she follows)
    alice.account_unfollow(me["carol"])


def test_trends_count_real_activity_within_the_boundary(site, users, me):
    alice, bob, carol, dave, erin, frank, mod = (users[n] for n in USERS)
    link = "https://news.example.org/launch?x=1"
    a = alice.status_post(f"We launched! #Launch {link}")
    bob.status_post(f"#launch day, read {link}")
    carol.status_post("more #launch news")
    alice.status_post("a single #lonely post")  # one account: not a trend
    for who in ("bob", "carol"):
        r = requests.post(f"{site.inst.base_url}/api/v1/statuses", headers=site.auth(who), timeout=10,
                          json={"status": "inside only #insiders", "local_only": True})
        assert r.status_code == 200 and r.json()["local_only"] is True
    dave.status_post("quiet #unlisted", visibility="unlisted")
    erin.status_post("quiet #unlisted", visibility="unlisted")  # erin is not discoverable either
    frank.status_post("for followers #secretplan", visibility="private")
    dave.status_post("for followers #secretplan", visibility="private")
    hot = dave.status_post("the plan is ready")
    for fan in (alice, bob, carol):
        fan.status_favourite(hot["id"])
    dave.status_favourite(hot["id"])  # the author's own favourite does not count
    warm = carol.status_post("one like only")
    bob.status_favourite(warm["id"])
    private = frank.status_post("private, liked", visibility="private")
    users["frank"].status_favourite(private["id"])
    requests.put(f"{site.inst.base_url}/api/v1/pleroma/statuses/{a['id']}/reactions/%F0%9F%8E%89",
                  headers=site.auth("dave"), timeout=10).raise_for_status()
    users["erin"].status_favourite(a["id"])

    # Reactions show on the status as Akkoma renders them, `me` for the viewer's own.
    shown = alice.status(a["id"])["pleroma"]["emoji_reactions"]
    assert shown == [{"name": "\U0001f389", "count": 1, "me": False}]
    assert dave.status(a["id"])["pleroma"]["emoji_reactions"][0]["me"] is True
    assert alice.status(hot["id"])["pleroma"]["emoji_reactions"] == []

    tags = alice.trending_tags()
    assert [t["name"] for t in tags] == ["Launch", "insiders"]  # 3 accounts, then 2; as first written
    launch = tags[0]
    assert len(launch["history"]) == 7 and launch["history"][0]["uses"] == "3"
    assert launch["history"][0]["accounts"] == "3" and launch["history"][1]["uses"] == "0"
    assert launch["history"][0]["day"].timestamp() % 86400 == 0 and launch["following"] is False
    assert [t["name"] for t in alice.trends()] == ["Launch", "insiders"]
    # Anonymous visitors never learn of local-only posts, not even as a count.
    anonymous = get(site, "/api/v1/trends/tags").json()
    assert [t["name"] for t in anonymous] == ["Launch"] and "following" not in anonymous[0]
    assert [t["name"] for t in alice.trending_tags(limit=1, offset=1)] == ["insiders"]

    links = alice.trending_links()
    assert [card["url"] for card in links] == [link]
    assert links[0]["type"] == "link" and links[0]["provider_name"] == "news.example.org"
    assert int(links[0]["history"][0]["accounts"]) == 2 and int(links[0]["history"][0]["uses"]) == 2

    statuses = alice.trending_statuses()
    # hot: 3 other accounts; alice's launch post: dave's reaction and erin's favourite. warm has one.
    assert [s["id"] for s in statuses] == [hot["id"], a["id"]]
    assert [s["id"] for s in get(site, "/api/v1/trends/statuses").json()] == [hot["id"], a["id"]]
    carol.account_mute(me["dave"])
    assert [s["id"] for s in carol.trending_statuses()] == [a["id"]]
    carol.account_unmute(me["dave"])

    # Admin review: a rejected item disappears at once (the cached counts are dropped), stays in the
    # admin list as not trendable, and comes back when approved; all of it in the audit log.
    admin = Mastodon(access_token=site.inst.token("mod", "read write admin:read admin:write"),
                     api_base_url=site.inst.base_url)
    listed = admin.admin_trending_tags()
    launch_id = next(t["id"] for t in listed if t["name"] == "Launch")
    rejected = admin.admin_reject_trending_tag(launch_id)
    assert rejected["trendable"] is False
    assert [t["name"] for t in alice.trending_tags()] == ["insiders"]
    assert any(t["name"] == "Launch" and t["trendable"] is False for t in admin.admin_trending_tags())
    admin.admin_approve_trending_tag(launch_id)
    assert [t["name"] for t in alice.trending_tags()] == ["Launch", "insiders"]

    admin.admin_reject_trending_status(hot["id"])
    assert [s["id"] for s in alice.trending_statuses()] == [a["id"]]
    assert hot["id"] in [s["id"] for s in admin.admin_trending_statuses()]
    card = admin.admin_trending_links()[0]
    admin.admin_reject_trending_link(card["id"])
    assert alice.trending_links() == []
    admin.admin_approve_trending_link(card["id"])
    assert [c["url"] for c in alice.trending_links()] == [link]

    with pytest.raises(MastodonAPIError):  # not staff
        Mastodon(access_token=site.inst.token("bob", "read admin:read admin:write"),
                 api_base_url=site.inst.base_url).admin_reject_trending_tag(launch_id)
    r = requests.post(f"{site.inst.base_url}/api/v1/admin/trends/tags/123/reject",
                      headers={"Authorization": f"Bearer {admin.access_token}"}, timeout=10)
    assert r.status_code == 404
    out = site.inst.cli("admin", "audit-log", "--action", "trend.reject").stdout
    assert out.count("trend.reject") >= 3

"""Groups on one instance, through Mastodon.py (the account view any app has), the Soapbox groups API
and `crosstalk admin group`: joining, approval, posting by mention, shares without reply floods,
members-only visibility, moderation, archive and transfer."""

from __future__ import annotations

import pytest
import requests

from tests.server.shared_instance import start_site, wait_for

USERS = ("owner", "ann", "ben", "cat", "dan", "eve")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = start_site(tmp_path_factory.mktemp("groups") / "a", USERS)
    yield site
    site.inst.dispose()


def _api(site, method, path, name, **kwargs):
    return requests.request(method, site.inst.base_url + path, headers=site.auth(name), timeout=10, **kwargs)


def _group(site, name, kind="open", owner="owner"):
    site.inst.cli("admin", "group", "create", name, "--owner", owner, "--kind", kind, "--display-name", name.title())
    found = site.api(owner).account_lookup(name)
    return found


def _home_ids(api):
    return [s["id"] for s in api.timeline_home(limit=40)]


def test_open_group_shares_top_level_posts_and_threads_replies(site):
    group = _group(site, "design")
    assert group["group"] is True and group["locked"] is False
    ann, ben, cat = site.api("ann"), site.api("ben"), site.api("cat")
    # Joining is following the group account, from any Mastodon app.
    ann.account_follow(group["id"])
    ben.account_follow(group["id"])
    assert ann.account_relationships(group["id"])[0]["following"]

    post = ann.status_post("@design what do you think of the new icons?")
    # The group boosts it: ben (a member who does not follow ann) sees it in his home timeline.
    shared = wait_for(lambda: [s for s in ben.timeline_home() if s["reblog"] and s["reblog"]["id"] == post["id"]])
    assert shared[0]["account"]["id"] == group["id"]
    assert shared[0]["account"]["group"] is True
    # cat is not a member: nothing in her home timeline.
    assert post["id"] not in [s["reblog"]["id"] for s in cat.timeline_home() if s["reblog"]]

    # A reply threads under the post but is not re-shared into home timelines.
    reply = ben.status_post("@ann looks good", in_reply_to_id=post["id"])
    assert wait_for(lambda: [d["id"] for d in ann.status_context(post["id"])["descendants"]]) == [reply["id"]]
    timeline = requests.get(f"{site.inst.base_url}/api/v1/timelines/group/{group['id']}",
                            headers=site.auth("cat"), timeout=10).json()
    assert [s["id"] for s in timeline] == [post["id"]]
    boosts_of_reply = [s for s in ann.timeline_home() if s["reblog"] and s["reblog"]["id"] == reply["id"]]
    assert boosts_of_reply == []

    # A non-member's mention is not shared.
    outsider = cat.status_post("@design hello from outside")
    later = ann.status_post("@design second topic")  # taken in after the outsider's post was looked at

    def group_timeline():
        return [s["id"] for s in requests.get(f"{site.inst.base_url}/api/v1/timelines/group/{group['id']}",
                                              headers=site.auth("ann"), timeout=10).json()]
    wait_for(lambda: later["id"] in group_timeline())
    assert outsider["id"] not in group_timeline()

    # The Soapbox API sees the same group.
    shown = _api(site, "GET", f"/api/v1/groups/{group['id']}", "ann").json()
    assert shown["display_name"] == "Design" and shown["members_count"] == 3
    assert shown["relationship"]["member"] is True and shown["relationship"]["role"] == "user"
    mine = _api(site, "GET", "/api/v1/groups", "ben").json()
    assert group["id"] in [g["id"] for g in mine]


def test_approval_group_requests_are_answered_by_moderators(site):
    group = _group(site, "board", kind="approval")
    assert group["locked"] is True
    dan = site.api("dan")
    dan.account_follow(group["id"])
    assert dan.account_relationships(group["id"])[0]["requested"] is True
    # Plain members cannot see the requests; the owner can, and approves.
    assert _api(site, "GET", f"/api/v1/groups/{group['id']}/membership_requests", "dan").status_code == 403
    pending = _api(site, "GET", f"/api/v1/groups/{group['id']}/membership_requests", "owner").json()
    assert [a["username"] for a in pending] == ["dan"]
    # The owner hears of it (not only the group account), from the requester.
    heard = wait_for(lambda: [n for n in site.api("owner").notifications() if n["type"] == "group_request"])
    assert heard[0]["account"]["username"] == "dan"
    dan_id = pending[0]["id"]
    r = _api(site, "POST", f"/api/v1/groups/{group['id']}/membership_requests/{dan_id}/authorize", "owner")
    assert r.status_code == 200, r.text
    assert dan.account_relationships(group["id"])[0]["following"] is True
    # A ban removes and refuses.
    r = _api(site, "POST", f"/api/v1/groups/{group['id']}/blocks", "owner", data={"account_ids[]": dan_id})
    assert r.status_code == 200, r.text
    assert dan.account_relationships(group["id"])[0]["following"] is False
    r = _api(site, "POST", f"/api/v1/groups/{group['id']}/join", "dan")
    assert r.status_code == 403
    assert "banned" in r.json()["error"]


def test_members_only_group_posts_reach_members_only(site):
    group = _group(site, "payroll", kind="members_only")
    ann, eve = site.api("ann"), site.api("eve")
    gid = group["id"]
    ann.account_follow(gid)
    ann_id = ann.me()["id"]
    owner = site.api("owner")
    r = _api(site, "POST", f"/api/v1/groups/{gid}/membership_requests/{ann_id}/authorize", "owner")
    assert r.status_code == 200, r.text
    # eve follows ann but is not a member.
    eve.account_follow(ann_id)
    post = ann.status_post("@payroll salary bands for next year", visibility="public")
    assert post["visibility"] == "direct"  # addressed to the group alone
    shared = wait_for(lambda: [s for s in owner.timeline_home() if s["reblog"] and s["reblog"]["id"] == post["id"]])
    assert shared[0]["visibility"] == "private"
    assert owner.status(post["id"])["id"] == post["id"]
    # Not for outsiders: not in eve's home, not fetchable, not in the group timeline.
    assert post["id"] not in [s["id"] for s in eve.timeline_home()]
    assert requests.get(f"{site.inst.base_url}/api/v1/statuses/{post['id']}", headers=site.auth("eve"),
                        timeout=10).status_code == 404
    assert requests.get(f"{site.inst.base_url}/api/v1/timelines/group/{gid}", headers=site.auth("eve"),
                        timeout=10).status_code == 403
    # Mentioning a non-member in a members-only post is refused.
    r = _api(site, "POST", "/api/v1/statuses", "ann", data={"status": "@payroll @eve look at this"})
    assert r.status_code == 422 and "not a member" in r.json()["error"]


def test_moderation_remove_pin_archive_transfer(site):
    group = _group(site, "guild")
    gid = group["id"]
    ann, ben = site.api("ann"), site.api("ben")
    for api in (ann, ben):
        api.account_follow(gid)
    post = ann.status_post("@guild spam spam spam")
    good = ben.status_post("@guild a useful link")
    wait_for(lambda: len(requests.get(f"{site.inst.base_url}/api/v1/timelines/group/{gid}", timeout=10).json()) == 2)
    # Members cannot remove posts; moderators can.
    assert _api(site, "DELETE", f"/api/v1/groups/{gid}/statuses/{post['id']}", "ben").status_code == 403
    ben_id = ben.me()["id"]
    r = _api(site, "POST", f"/api/v1/groups/{gid}/promote", "owner", data={"account_ids[]": ben_id, "role": "admin"})
    assert r.status_code == 200, r.text
    assert _api(site, "DELETE", f"/api/v1/groups/{gid}/statuses/{post['id']}", "ben").status_code == 200
    wait_for(lambda: requests.get(f"{site.inst.base_url}/api/v1/statuses/{post['id']}", timeout=10).status_code == 404)
    assert [s["id"] for s in requests.get(f"{site.inst.base_url}/api/v1/timelines/group/{gid}",
                                          timeout=10).json()] == [good["id"]]
    # Pin through the CLI.
    site.inst.cli("admin", "group", "pin", "guild", good["id"])
    pinned = requests.get(f"{site.inst.base_url}/api/v1/timelines/group/{gid}?pinned=true", timeout=10).json()
    assert [s["id"] for s in pinned] == [good["id"]]
    # The owner cannot leave; transfers ownership, then may.
    assert _api(site, "POST", f"/api/v1/groups/{gid}/leave", "owner").status_code == 422
    r = _api(site, "POST", f"/api/v1/groups/{gid}/transfer", "owner", data={"account_id": ben_id})
    assert r.status_code == 200 and r.json()["owner"]["id"] == ben_id
    assert _api(site, "POST", f"/api/v1/groups/{gid}/leave", "owner").json()["member"] is False
    # Archived: read-only, nobody joins, nothing new is shared.
    site.inst.cli("admin", "group", "archive", "guild")
    assert _api(site, "POST", f"/api/v1/groups/{gid}/join", "cat").status_code == 422
    late = ann.status_post("@guild anyone still here?")
    show = site.inst.cli("admin", "group", "show", "guild").stdout
    assert "archived=True" in show and f"owner={ben_id}" in show
    assert late["id"] not in [s["id"] for s in requests.get(
        f"{site.inst.base_url}/api/v1/timelines/group/{gid}", timeout=10).json()]


def test_bad_input_is_refused_cleanly(site):
    assert _api(site, "GET", "/api/v1/groups/123", "ann").status_code == 404
    assert _api(site, "GET", "/api/v1/groups/abc", "ann").status_code == 404
    r = _api(site, "POST", "/api/v1/groups", "ann", data={"display_name": "x y", "kind": "secret"})
    assert r.status_code == 422
    r = _api(site, "POST", "/api/v1/groups", "ann", data={"display_name": "Partners", "federation": "partners"})
    assert r.status_code == 422
    r = _api(site, "POST", "/api/v1/groups", "ann",
             data={"display_name": "Joint WG", "username": "joint_wg", "federation": "partners",
                   "partners[]": ["partner.example"]})
    assert r.status_code == 200, r.text
    assert r.json()["crosstalk"]["partners"] == ["partner.example"]
    assert r.json()["relationship"]["role"] == "owner"
    r = _api(site, "POST", f"/api/v1/groups/{r.json()['id']}/kick", "ann", data={})
    assert r.status_code == 422
    bad = site.inst.cli("admin", "group", "show", "nosuchgroup", check=False)
    assert bad.returncode == 1 and "no group" in bad.stderr


def test_soapbox_group_id_posts_in_the_group(site):
    group = _group(site, "kickoff")
    gid = group["id"]
    ann, ben = site.api("ann"), site.api("ben")
    ann.account_follow(gid)
    ben.account_follow(gid)
    # Soapbox posts in a group with group_id instead of a mention; the group shares it with members.
    r = _api(site, "POST", "/api/v1/statuses", "ann", json={"status": "Kick-off on Monday", "group_id": gid})
    assert r.status_code == 200, r.text
    post = r.json()
    wait_for(lambda: [s for s in ben.timeline_home() if s["reblog"] and s["reblog"]["id"] == post["id"]])
    # Only members may post so; group_id must name a group.
    r = _api(site, "POST", "/api/v1/statuses", "eve", json={"status": "let me in", "group_id": gid})
    assert r.status_code == 403
    r = _api(site, "POST", "/api/v1/statuses", "ann", json={"status": "nowhere", "group_id": ann.me()["id"]})
    assert r.status_code == 422
    r = _api(site, "POST", "/api/v1/statuses", "ann", json={"status": "nowhere", "group_id": "abc"})
    assert r.status_code == 422

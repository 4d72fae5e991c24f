"""Mastodon's admin API for accounts and reports through Mastodon.py, the same actions from the
`crosstalk admin` CLI, roles and scopes enforced, and the audit log: every action recorded, no secret
in it, and the database refusing to change or delete a row."""

from __future__ import annotations

import pytest
import requests
from mastodon import Mastodon, MastodonAPIError


def _api(instance, name: str, scopes: str) -> Mastodon:
    return Mastodon(access_token=instance.token(name, scopes), api_base_url=instance.base_url)


def test_admin_accounts_and_reports_api_and_cli(instance):
    instance.create_user("boss", admin=True)
    instance.create_user("mod")
    instance.create_user("alice")
    instance.create_user("mallory")
    instance.cli("admin", "account", "role", "mod", "moderator")
    admin = _api(instance, "boss", "read write admin:read admin:write")
    mod = _api(instance, "mod", "read write admin:read admin:write")
    alice = _api(instance, "alice", "read write")
    mallory_id = alice.account_lookup("mallory")["id"]

    listed = admin.admin_accounts_v2(origin="local")
    assert {a["username"] for a in listed} >= {"boss", "mod", "alice", "mallory"}
    entry = next(a for a in listed if a["username"] == "boss")
    assert entry["role"]["name"] == "Admin" and entry["email"] == "boss@example.test" and entry["domain"] is None
    staff = admin.admin_accounts_v2(permissions="staff")
    assert {a["username"] for a in staff} == {"boss", "mod"}
    assert [a["username"] for a in admin.admin_accounts_v1(username="mall")] == ["mallory"]
    with pytest.raises(MastodonAPIError):  # a user without a role
        _api(instance, "alice", "read admin:read").admin_accounts_v2()
    with pytest.raises(MastodonAPIError):  # a moderator cannot act on an admin
        mod.admin_account_moderate(admin.me()["id"], action="suspend")

    report = alice.report(mallory_id, comment="spam everywhere")
    reports = mod.admin_reports()
    assert [r["id"] for r in reports] == [str(report["id"])]
    assert reports[0]["target_account"]["username"] == "mallory"
    assert mod.admin_report_assign(report["id"])["assigned_account"]["username"] == "mod"
    assert mod.admin_report_unassign(report["id"])["assigned_account"] is None
    mod.admin_account_moderate(mallory_id, action="silence", report_id=report["id"], text="spam")
    resolved = mod.admin_report(report["id"])
    assert resolved["action_taken"] is True and resolved["action_taken_by_account"]["username"] == "mod"
    assert mod.admin_report_reopen(report["id"])["action_taken"] is False
    assert mod.admin_report_resolve(report["id"])["action_taken"] is True
    assert admin.admin_account(mallory_id)["silenced"] is True
    assert admin.admin_account_unsilence(mallory_id)["silenced"] is False
    admin.admin_account_moderate(mallory_id, action="sensitive")
    assert admin.admin_account_unsensitive(mallory_id)["sensitized"] is False
    admin.admin_account_moderate(mallory_id, action="disable")
    assert admin.admin_account(mallory_id)["disabled"] is True
    assert admin.admin_account_enable(mallory_id)["disabled"] is False
    with pytest.raises(MastodonAPIError):  # delete needs a suspension first, as in Mastodon
        admin.admin_account_delete(mallory_id)
    admin.admin_account_moderate(mallory_id, action="suspend")
    assert admin.admin_accounts_v2(status="suspended")[0]["username"] == "mallory"
    assert admin.admin_account_unsuspend(mallory_id)["suspended"] is False

    # The CLI does the same; the account of a deleted user stays as a tombstone.
    instance.cli("admin", "account", "suspend", "alice", "--reason", "left the company")
    assert requests.get(f"{instance.base_url}/api/v1/accounts/verify_credentials", timeout=10,
                        headers={"Authorization": f"Bearer {alice.access_token}"}).status_code == 401
    instance.cli("admin", "account", "delete", "alice")
    assert "suspended=True" in instance.cli("admin", "account", "show", "alice").stdout
    assert "resolved" in instance.cli("admin", "report", "list").stdout

    # Everything above is in the audit log, with its actor, and the admin API shows it to admins only.
    log = instance.cli("admin", "audit-log", "--json").stdout
    for action in ("account.role", "report.assign", "report.unassign", "account.silence", "report.resolve",
                   "report.reopen", "account.unsilence", "account.sensitive", "account.unsensitive",
                   "account.disable", "account.enable", "account.suspend", "account.unsuspend", "account.delete",
                   "token.grant"):
        assert f'"action":"{action}"' in log, action
    assert '"actor":"cli"' in log and '"actor":"mod"' in log
    assert alice.access_token not in log and "correct horse battery" not in log
    api_log = requests.get(f"{instance.base_url}/api/v1/admin/audit_log", params={"action": "account."},
                           headers={"Authorization": f"Bearer {admin.access_token}"}, timeout=10)
    assert api_log.status_code == 200 and api_log.json()[0]["action"] == "account.delete"
    assert requests.get(f"{instance.base_url}/api/v1/admin/audit_log", timeout=10,
                        headers={"Authorization": f"Bearer {mod.access_token}"}).status_code == 403


def test_audit_log_is_append_only_in_the_database(instance):
    instance.create_user("boss", admin=True)
    instance.cli("admin", "account", "role", "boss", "moderator")
    assert instance.sql("SELECT count(*) FROM audit_log WHERE action = 'account.role'")[0][0] == 1
    with pytest.raises(RuntimeError, match="append-only"):
        instance.sql("UPDATE audit_log SET actor = 'someone else'")
    with pytest.raises(RuntimeError, match="cannot be deleted"):
        instance.sql("DELETE FROM audit_log")
    assert instance.sql("SELECT count(*) FROM audit_log WHERE actor = 'someone else'")[0][0] == 0


def test_silenced_and_sensitive_accounts_are_limited_as_in_mastodon(instance):
    """Silence keeps an account out of the public and tag timelines and out of the notifications of
    people who do not follow it; sensitive marks every post of it, new or edited."""
    import time
    instance.create_user("boss", admin=True)
    instance.create_user("loud")
    instance.create_user("fan")
    instance.create_user("stranger")
    admin = _api(instance, "boss", "read write admin:read admin:write")
    loud, fan, stranger = (_api(instance, name, "read write follow") for name in ("loud", "fan", "stranger"))
    loud_id = fan.account_lookup("loud")["id"]
    fan.account_follow(loud_id)
    admin.admin_account_moderate(loud_id, action="silence")
    admin.admin_account_moderate(loud_id, action="sensitive")

    post = loud.status_post("hello @fan and @stranger #townhall", visibility="public")
    assert post["sensitive"] is True
    assert loud.status_update(post["id"], "edited hello #townhall", sensitive=False)["sensitive"] is True
    assert post["id"] not in {s["id"] for s in stranger.timeline_public()}
    assert post["id"] not in {s["id"] for s in stranger.timeline_hashtag("townhall")}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(n["type"] == "mention" for n in fan.notifications()):
        time.sleep(0.1)
    assert any(n["type"] == "mention" and n["status"]["id"] == post["id"] for n in fan.notifications())
    assert not any(n["type"] == "mention" for n in stranger.notifications())  # not a follower
    assert post["id"] in {s["id"] for s in fan.timeline_home()}  # followers still read it

    admin.admin_account_unsilence(loud_id)
    admin.admin_account_unsensitive(loud_id)
    later = loud.status_post("back to normal", visibility="public")
    assert later["sensitive"] is False
    assert {post["id"], later["id"]} <= {s["id"] for s in stranger.timeline_public()}


def test_a_suspended_accounts_hidden_posts_leave_home_timelines_and_come_back(make_instance):
    """With `accounts.suspended_posts = hide`, a suspended account's posts leave their followers' home
    timelines, whose pages stay full with the posts of others, and return when it is reactivated."""
    import time
    instance = make_instance("a", env={"CROSSTALK_ACCOUNTS_SUSPENDED_POSTS": "hide"})
    for name in ("boss", "gone", "kept", "fan"):
        instance.create_user(name, admin=name == "boss")
    admin = _api(instance, "boss", "read write admin:read admin:write")
    gone, kept, fan = (_api(instance, name, "read write follow") for name in ("gone", "kept", "fan"))
    gone_id = fan.account_lookup("gone")["id"]
    fan.account_follow(gone_id)
    fan.account_follow(fan.account_lookup("kept")["id"])
    older = [kept.status_post(f"kept {i}")["id"] for i in range(2)]
    hidden = [gone.status_post(f"gone {i}")["id"] for i in range(3)]
    every = set(older) | set(hidden)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not every <= {s["id"] for s in fan.timeline_home(limit=40)}:
        time.sleep(0.1)
    assert [s["id"] for s in fan.timeline_home(limit=2)] == hidden[:0:-1]

    admin.admin_account_moderate(gone_id, action="suspend")
    assert [s["id"] for s in fan.timeline_home(limit=2)] == older[::-1]  # a full page of what is left
    assert not set(hidden) & {s["id"] for s in fan.timeline_home(limit=40)}
    assert [s["id"] for s in fan.timeline_home(limit=2, max_id=hidden[0])] == older[::-1]

    admin.admin_account_unsuspend(gone_id)
    assert [s["id"] for s in fan.timeline_home(limit=3)] == hidden[::-1]


def test_a_suspended_accounts_profile_is_gone_at_once_and_back_with_its_new_name(instance):
    """An account's pages are served from the rendering cache: one read just before a suspension does
    not keep them up after it, and a rename shows on the very next page."""
    instance.create_user("chief", admin=True)
    instance.create_user("member")
    instance.create_user("reader")
    admin = _api(instance, "chief", "read write admin:read admin:write")
    member, reader = (_api(instance, name, "read write follow") for name in ("member", "reader"))
    member_id = reader.account_lookup("member")["id"]
    post = member.status_post("on the record", visibility="public")
    for viewer in (reader, Mastodon(api_base_url=instance.base_url)):  # signed in and anonymous
        assert [s["id"] for s in viewer.account_statuses(member_id)] == [post["id"]]
        assert viewer.account(member_id)["username"] == "member"

    admin.admin_account_moderate(member_id, action="suspend")
    for viewer in (reader, Mastodon(api_base_url=instance.base_url)):
        for read in (viewer.account_statuses, viewer.account):
            with pytest.raises(MastodonAPIError) as gone:
                read(member_id)
            assert gone.value.args[1] == 404

    admin.admin_account_unsuspend(member_id)
    assert [s["id"] for s in reader.account_statuses(member_id)] == [post["id"]]
    member = _api(instance, "member", "read write")  # a suspension ends the account's tokens
    member.account_update_credentials(display_name="Member, renamed")
    assert reader.account(member_id)["display_name"] == "Member, renamed"
    assert reader.account_statuses(member_id)[0]["account"]["display_name"] == "Member, renamed"


def test_the_admin_cli_makes_users_and_tokens(instance):
    """`crosstalk admin create-user` and `create-token` as an operator runs them (the fixtures make
    their users and tokens in-process, through the same code)."""
    made = instance.cli("admin", "create-user", "carla", "--email", "carla@example.test", "--password",
                        "correct horse battery", "--admin")
    assert made.stdout.startswith("created admin user carla (id ")
    token = instance.cli("admin", "create-token", "carla", "--scopes", "read write").stdout.strip()
    assert Mastodon(access_token=token, api_base_url=instance.base_url).me()["username"] == "carla"
    again = instance.cli("admin", "create-user", "carla", "--email", "other@example.test", "--password",
                         "correct horse battery", check=False)
    assert again.returncode != 0 and "Traceback" not in again.stderr, again.stderr
    unknown = instance.cli("admin", "create-token", "nobody", "--scopes", "read", check=False)
    assert unknown.returncode != 0 and "Traceback" not in unknown.stderr, unknown.stderr

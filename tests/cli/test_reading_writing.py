"""xtalk's reading and writing commands against a real instance (profiles alice, bob, carol)."""

from __future__ import annotations

import sys
import textwrap
import uuid

import pytest


def test_post_reply_thread_and_timeline_json(logged_in, api):
    x = logged_in
    bob_id = api["bob"]("GET", "/api/v1/accounts/verify_credentials")["id"]
    api["alice"]("POST", f"/api/v1/accounts/{bob_id}/follow")
    root = x.json("post", "Root of a <thread> & more #xtalk", "-P", "bob")[0]
    assert root["account"]["username"] == "bob" and "&lt;thread&gt;" in root["content"]
    reply = x.json("post", "@bob a reply", "--reply-to", root["id"], "-P", "alice")[0]
    assert reply["in_reply_to_id"] == root["id"]
    nested = x.json("post", "@alice deeper", "--reply-to", reply["id"], "-P", "bob", "--visibility", "unlisted")[0]
    assert nested["visibility"] == "unlisted"

    thread = x("thread", reply["id"], "-P", "carol").stdout
    lines = thread.splitlines()
    head = [i for i, line in enumerate(lines) if "@bob" in line and f"id {root['id']}" in line][0]
    assert lines[head].startswith("bob @bob")
    assert "Root of a <thread> & more #xtalk" in lines[head + 1]
    focus = [line for line in lines if f"id {reply['id']}" in line][0]
    deeper = [line for line in lines if f"id {nested['id']}" in line][0]
    assert focus.startswith("  > alice @alice"), "the asked-for post is indented one level and marked"
    assert deeper.startswith("    bob @bob"), "its reply is indented one more level"
    # By URL too, and as JSON lines in thread order.
    assert [s["id"] for s in x.json("thread", reply["url"], "-P", "carol")] == [root["id"], reply["id"], nested["id"]]

    home = x.json("timeline", "home", "-P", "alice")
    ids = [s["id"] for s in home]
    assert root["id"] in ids and reply["id"] in ids
    assert all(isinstance(s["account"], dict) and "content" in s for s in home)
    assert [s["id"] for s in x.json("timeline", "tag", "xtalk", "-P", "carol")] == [root["id"]]
    readable = x("timeline", "local", "-P", "carol", "--limit", "3").stdout
    assert "Root of a <thread> & more #xtalk" in readable and "\x1b[" not in readable


def test_cw_is_folded_unless_expanded(logged_in):
    x = logged_in
    post = x.json("post", "The secret ending", "--cw", "film spoilers", "-P", "carol")[0]
    assert post["spoiler_text"] == "film spoilers" and post["sensitive"] is True
    folded = x("thread", post["id"], "-P", "alice").stdout
    assert "CW: film spoilers" in folded and "The secret ending" not in folded and "--expand" in folded
    assert "The secret ending" in x("thread", post["id"], "-P", "alice", "--expand").stdout


def test_stdin_editor_and_idempotency_key(logged_in, tmp_path):
    x = logged_in
    from_stdin = x.json("post", "-P", "carol", input="line one\n\nline two\n")[0]
    assert from_stdin["content"].count("<p>") == 2

    editor = tmp_path / "editor"
    editor.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import sys
        with open(sys.argv[1], "a", encoding="utf-8") as fh:
            fh.write(" written in the editor")
        """))
    editor.chmod(0o755)
    x.env["EDITOR"] = str(editor)
    try:
        composed = x.json("post", "--editor", "-P", "carol")[0]
        assert "written in the editor" in composed["content"]
        # edit starts the editor from the current source text
        edited = x.json("edit", composed["id"], "--editor", "-P", "carol")[0]
        assert edited["content"].count("written in the editor") == 2 and edited["edited_at"]
    finally:
        del x.env["EDITOR"]

    key = uuid.uuid4().hex
    first = x.json("post", "only once", "--idempotency-key", key, "-P", "carol")[0]
    again = x.json("post", "only once", "--idempotency-key", key, "-P", "carol")[0]
    assert first["id"] == again["id"]

    empty = x("post", "-P", "carol", input="   \n", expect=1)
    assert "nothing to post" in empty.stderr


def test_follow_notifications_and_interactions(logged_in, api):
    x = logged_in
    followed = x("follow", "@carol", "-P", "bob")
    assert "Following @carol." in followed.stdout
    shown = x("show", "@carol", "-P", "bob").stdout
    assert "@carol" in shown and "you follow them" in shown

    post = api["carol"]("POST", "/api/v1/statuses", json={"status": "Notice me @bob"})
    assert "Favourited" in x("fav", post["id"], "-P", "bob").stdout
    assert x.json("boost", post["id"], "-P", "bob")[0]["reblog"]["id"] == post["id"]
    assert x.json("bookmark", post["id"], "-P", "bob")[0]["bookmarked"] is True
    assert x.json("bookmark", post["id"], "--undo", "-P", "bob")[0]["bookmarked"] is False

    notes = x.json("notifications", "-P", "carol")
    kinds = {(n["type"], n["account"]["username"]) for n in notes}
    assert {("follow", "bob"), ("favourite", "bob"), ("reblog", "bob")} <= kinds
    mentions = x.json("notifications", "--type", "mention", "-P", "bob")
    assert mentions and all(n["type"] == "mention" for n in mentions)
    assert any(n["status"]["id"] == post["id"] for n in mentions)
    readable = x("notifications", "-P", "carol").stdout
    assert "bob @bob followed you" in readable and "bob @bob favourited your post" in readable

    edited = x.json("edit", post["id"], "Notice me, edited", "-P", "carol")[0]
    assert "edited" in edited["content"]
    assert f"Deleted post {post['id']}." in x("delete", post["id"], "-P", "carol").stdout
    gone = x("thread", post["id"], "-P", "carol", expect=5)
    assert gone.stderr.startswith("xtalk: not found")

    assert "Muted @carol." in x("mute", "@carol", "-P", "alice").stdout
    assert x.json("unmute", "@carol", "-P", "alice")[0]["muting"] is False
    assert x.json("block", "@carol", "-P", "alice")[0]["blocking"] is True
    assert "Unblocked @carol." in x("unblock", "@carol", "-P", "alice").stdout
    assert x.json("unfollow", "@carol", "-P", "bob")[0]["following"] is False


def test_all_walks_link_headers(logged_in, api):
    x = logged_in
    ids = [api["alice"]("POST", "/api/v1/statuses", json={"status": f"page item {i} #pagewalk"})["id"]
           for i in range(5)]
    one_page = x.json("timeline", "tag", "pagewalk", "--limit", "2", "-P", "alice")
    assert [s["id"] for s in one_page] == ids[::-1][:2]
    everything = x.json("timeline", "tag", "pagewalk", "--limit", "2", "--all", "-P", "alice")
    assert [s["id"] for s in everything] == ids[::-1]


@pytest.mark.parametrize("handle", ["@nobody", "@nobody@127.0.0.1"])
def test_unknown_account_is_not_found(logged_in, handle):
    result = logged_in("show", handle, "-P", "alice", expect=5)
    assert result.stderr.startswith("xtalk: not found") and result.stderr.count("\n") == 1


def test_local_only_visibility(logged_in):
    x = logged_in
    inside = x.json("post", "internal only", "--visibility", "local", "-P", "carol")[0]
    assert inside["local_only"] is True and inside["visibility"] == "public"

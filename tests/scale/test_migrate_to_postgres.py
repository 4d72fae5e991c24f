"""`crosstalk admin migrate-to-postgres`: an instance built on SQLite through the API (users, posts,
media, a poll, follows, a federating partner) is copied into an empty PostgreSQL database; the same
domain then serves from PostgreSQL with everything there, and the partner keeps federating with it."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
import requests
from PIL import Image

from tests.conftest import Instance
from tests.federation_e2e.conftest import FED_ENV, wait_for
from tests.services import scratch_postgres


@pytest.fixture
def target() -> object:
    yield from scratch_postgres()


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 120, 200)).save(out, "PNG")
    return out.getvalue()


def pg(url: str, sql: str) -> list[tuple[object, ...]]:
    from tests.databases import query
    return query(url, Path("/nonexistent"), sql)


def test_a_sqlite_instance_moves_to_postgres_and_keeps_federating(tmp_path, make_instance, target):
    a = Instance(tmp_path / "a", dict(FED_ENV), sqlite=True)
    partner = make_instance("b", env=dict(FED_ENV))
    try:
        a.start()
        for name in ("alice", "bob"):
            a.create_user(name)
        partner.create_user("carol")
        alice, bob, carol = a.api("alice"), a.api("bob"), partner.api("carol")

        # Data made through the API on SQLite.
        bob.account_follow(bob.account_lookup("alice")["id"])
        media = alice.media_post(io.BytesIO(png()), mime_type="image/png", description="A blue rectangle")
        pictured = alice.status_post("Quarterly figures attached", media_ids=[media["id"]])
        polled = alice.status_post("Lunch?", poll=alice.make_poll(["pizza", "salad"], expires_in=3600))
        bob.status_favourite(pictured["id"])
        alice_remote = carol.account_search(f"alice@{a.domain}", resolve=True)[0]
        carol.account_follow(alice_remote["id"])
        wait_for(lambda: carol.account_relationships(alice_remote["id"])[0]["following"])
        early = alice.status_post("Before the move, to my followers near and far")
        wait_for(lambda: [s for s in carol.timeline_home() if s["uri"] == early["uri"]])
        carol_post = carol.status_post(f"@alice@{a.domain} hello from the partner")
        wait_for(lambda: alice.notifications(types=["mention"]))
        a.cli("admin", "domain", "block", "spam.example", "--comment", "kept across the move")
        counts = {t: a.sql(f"SELECT count(*) FROM {t}")[0][0]
                  for t in ("accounts", "statuses", "follows", "media_attachments", "polls", "boundary_log",
                                "domain_rules", "tokens", "apps")}
        assert counts["boundary_log"] > 0 and counts["media_attachments"] == 1

        # A server still running on the file is refused: its later writes would be lost.
        running = a.cli("admin", "migrate-to-postgres", "--database-url", target, check=False)
        assert running.returncode == 1 and "stop every" in running.stderr, running.stderr
        a.stop()
        handed_out = a.sql("SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'invalidations'")[0][0]
        assert handed_out > 0  # cache invalidations were numbered on SQLite

        # A row PostgreSQL refuses (SQLite lets an INTEGER column hold text) stops the copy half-way:
        # nothing is committed, the message names the place, and a rerun after the fix succeeds.
        a.sql("UPDATE statuses SET sensitive = 'oops' WHERE id = ?", (int(polled["id"]),))
        failed = a.cli("admin", "migrate-to-postgres", "--database-url", target, check=False)
        assert failed.returncode == 1, failed.stderr
        assert "table statuses, column sensitive" in failed.stderr, failed.stderr
        assert pg(target, "SELECT count(*) FROM accounts") == [(0,)]
        a.sql("UPDATE statuses SET sensitive = 0 WHERE id = ?", (int(polled["id"]),))

        done = a.cli("admin", "migrate-to-postgres", "--database-url", target)
        assert "every table's row count matches" in done.stdout, done.stdout
        assert re.search(r"statuses: 100% \(\d+/\d+ rows\)", done.stderr), done.stderr
        for table, count in counts.items():
            assert pg(target, f"SELECT count(*) FROM {table}") == [(count,)], table
        # Every table is vacuumed as well as analysed: with its visibility map set, an index-only scan
        # (a home timeline's ids) reads no table pages.
        assert pg(target, "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
                          " AND relkind = 'r' AND relpages > 0 AND relallvisible < relpages") == []

        # A second run finds a database with rows and refuses it plainly.
        again = a.cli("admin", "migrate-to-postgres", "--database-url", target, check=False)
        assert again.returncode == 1 and "is not empty: table" in again.stderr, again.stderr

        # The boundary log stays append-only on PostgreSQL.
        with pytest.raises(RuntimeError, match="append-only"):
            pg(target, "UPDATE boundary_log SET outcome = 'rejected'")
        # The counter PostgreSQL keeps itself continues after SQLite's.
        assert pg(target, "SELECT nextval(pg_get_serial_sequence('invalidations', 'id'))")[0][0] > handed_out

        # The same domain, now on PostgreSQL.
        moved = Instance(tmp_path / "a", {**FED_ENV, "CROSSTALK_DATABASE_URL": target}, port=a.port)
        moved.start()
        try:
            alice, bob = moved.api("alice"), moved.api("bob")
            mine = {s["id"]: s for s in alice.account_statuses(alice.me()["id"])}
            assert {pictured["id"], polled["id"], early["id"]} <= set(mine)
            attachment = mine[pictured["id"]]["media_attachments"][0]
            assert attachment["description"] == "A blue rectangle"
            assert requests.get(attachment["url"], timeout=5).status_code == 200
            assert mine[pictured["id"]]["favourites_count"] == 1
            assert bob.account_relationships(alice.me()["id"])[0]["following"]
            assert {s["id"] for s in bob.timeline_home()} >= {pictured["id"], polled["id"]}
            bob.poll_vote(mine[polled["id"]]["poll"]["id"], [1])
            assert alice.status(polled["id"])["poll"]["votes_count"] == 1
            found = alice.search_v2("quarterly", result_type="statuses")["statuses"]
            assert [s["id"] for s in found] == [pictured["id"]]
            assert any(n["status"]["uri"] == carol_post["uri"] for n in alice.notifications(types=["mention"]))
            assert alice.account_followers(alice.me()["id"])  # bob and carol

            # The partner notices nothing: the same keys sign, the same URLs answer.
            after = alice.status_post("After the move, from PostgreSQL")
            assert int(after["id"]) > int(early["id"])
            wait_for(lambda: [s for s in carol.timeline_home() if s["uri"] == after["uri"]])
            reply = carol.status_post(f"@alice@{a.domain} still here",
                                      in_reply_to_id=carol.search_v2(after["uri"], resolve=True)["statuses"][0]["id"])
            wait_for(lambda: [n for n in alice.notifications(types=["mention"]) if n["status"]["uri"] == reply["uri"]])
        finally:
            moved.stop()
    finally:
        a.stop()


def test_a_non_crosstalk_database_and_a_missing_target_are_refused(tmp_path, target):
    a = Instance(tmp_path / "a", {}, sqlite=True)
    a.start()
    a.stop()
    pg(target, "CREATE TABLE payroll (id INTEGER)")
    refused = a.cli("admin", "migrate-to-postgres", "--database-url", target, check=False)
    assert refused.returncode == 1 and "not empty" in refused.stderr and "payroll" in refused.stderr, refused.stderr
    unreachable = a.cli("admin", "migrate-to-postgres", "--database-url", "postgresql://nobody@127.0.0.1:1/none",
                        check=False)
    assert unreachable.returncode == 2 and "--database-url" in unreachable.stderr, unreachable.stderr
    lines = unreachable.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("copying")  # what it was doing, then one line saying why not
    wrong = a.cli("admin", "migrate-to-postgres", "--database-url", "mysql://x@127.0.0.1/y", check=False)
    assert wrong.returncode == 2 and "postgresql://" in wrong.stderr

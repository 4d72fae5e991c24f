"""The database seam, on whichever engine the suite runs on (SQLite, or PostgreSQL with
CROSSTALK_TEST_DATABASE_URL): migrations, start-up errors, the append-only boundary log enforced by the
database itself, and writes that race each other through the real API."""

from __future__ import annotations

import ast
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import requests

from server.storage.migrations import latest, load
from server.storage.postgres import to_postgres
from tests import databases
from tests.cli.conftest import password_token
from tests.conftest import ROOT, Instance, authorize_in_browser, free_port

PASSWORD = "correct horse battery"


def test_placeholders_are_numbered_the_way_sqlite_numbers_them():
    assert to_postgres("SELECT ? , ?") == "SELECT $1 , $2"
    # A bare ? is one more than the largest number so far; numbered ones may repeat.
    assert to_postgres("SELECT ?1, ?2, ?1, ?, ?") == "SELECT $1, $2, $1, $3, $4"
    assert to_postgres("SELECT ?3, ?") == "SELECT $3, $4"
    # Question marks in literals, quoted names and comments are text, not placeholders.
    assert to_postgres("SELECT '?', \"a?\", ? -- why?\n, ?") == "SELECT '?', \"a?\", $1 -- why?\n, $2"
    assert to_postgres("SELECT 'it''s ?', ?") == "SELECT 'it''s ?', $1"


def test_both_engines_have_every_schema_version():
    """A schema change is one migration per engine with the same number (PostgreSQL's series starts with
    a baseline equal to SQLite's migrations up to its number), so a version means the same tables."""
    sqlite = {v for v, _, _ in load("sqlite")}
    postgres = {v for v, _, _ in load("postgres")}
    baseline = min(postgres)
    assert baseline in sqlite
    assert {v for v in sqlite if v > baseline} == postgres - {baseline}
    assert latest("sqlite") == latest("postgres")


def test_only_storage_knows_which_engine_runs():
    """Handlers, services, workers and rendering reach the database through the Store only."""
    engine_modules = {"sqlite3", "aiosqlite", "asyncpg", "server.storage.db", "server.storage.postgres",
                      "server.storage.postgres_copy"}
    offenders = []
    for path in (ROOT / "server").rglob("*.py"):
        if "storage" in path.relative_to(ROOT).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n in engine_modules]
    assert offenders == []


def test_migrate_reports_the_schema_version(make_instance):
    inst = make_instance("a", start=False)
    out = inst.cli("migrate").stdout
    engine = "postgres" if inst.on_postgres else "sqlite"
    assert out.strip().endswith(f"is at schema version {latest(engine)}"), out
    assert ("PostgreSQL database" in out) == inst.on_postgres
    assert "postgres@" not in out and "password" not in out  # no credentials in what is printed


@pytest.mark.parametrize("url, problem", [
    ("mysql://db.example/crosstalk", "must be a PostgreSQL URL"),
    ("postgresql://nobody@127.0.0.1:{port}/crosstalk", "cannot connect to PostgreSQL database 127.0.0.1:{port}"),
])
def test_a_bad_database_url_stops_start_up_with_one_line(make_instance, url, problem):
    port = free_port()
    inst = make_instance("a", start=False, env={"CROSSTALK_DATABASE_URL": url.format(port=port)})
    for command in (["serve"], ["migrate"]):
        result = inst.cli(*command, check=False)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "database.url (CROSSTALK_DATABASE_URL)" in lines[0], result.stderr
        assert problem.format(port=port) in lines[0], lines[0]


def test_concurrent_starts_apply_each_migration_once(requires_postgres, tmp_path):
    """Several processes migrating one empty database at once: the advisory lock lets one apply each
    migration and the others find it done."""
    url = databases.create_empty_database()
    try:
        inst = Instance(tmp_path / "a", {"CROSSTALK_DATABASE_URL": url})
        # Each process its own data directory: the start-up check that one is writable is not what
        # this is about (and writes one shared probe file, which processes sharing a directory race on).
        procs = [subprocess.Popen([sys.executable, "-m", "server.cli", "migrate"], cwd=ROOT,
                                  env={**inst.env, "CROSSTALK_DATA_DIR": str(tmp_path / f"data{i}")},
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(4)]
        results = [p.communicate(timeout=60) for p in procs]
        assert [p.returncode for p in procs] == [0] * 4, results
        versions = inst.sql("SELECT version, count(*) FROM schema_migrations GROUP BY version ORDER BY version")
        assert versions == [(v, 1) for v, _, _ in load("postgres")]
        assert inst.sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database ="
                        " (SELECT oid FROM pg_database WHERE datname = current_database())") == [(0,)]
    finally:
        databases.drop_database(url)


def test_the_boundary_log_is_append_only_in_the_database(make_instance):
    """Not only the code: whoever connects to the database cannot change or drop recent entries."""
    inst = make_instance("a")
    # Two days old: past the day for which entries cannot be deleted, but within the retention period,
    # so the retention job (which runs at start) cannot remove it before the statements below.
    two_days_ago = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    inst.sql("INSERT INTO boundary_log (id, at, direction, event, domain, outcome) VALUES"
             " (1, ?, 'in', 'test', 'old.example', 'accepted'),"
             " (2, '2999-01-01T00:00:00.000Z', 'in', 'test', 'new.example', 'accepted')", (two_days_ago,))
    for statement in ("UPDATE boundary_log SET outcome = 'rejected' WHERE id = 2",
                      "UPDATE boundary_log SET outcome = 'rejected' WHERE id = 1",
                      "DELETE FROM boundary_log WHERE id = 2"):
        with pytest.raises(RuntimeError, match="append-only|cannot be deleted"):
            inst.sql(statement)
    if inst.on_postgres:
        with pytest.raises(RuntimeError, match="append-only"):
            inst.sql("TRUNCATE boundary_log")
    inst.sql("DELETE FROM boundary_log WHERE id = 1")  # entries older than a day may go (retention)
    assert inst.sql("SELECT id, outcome FROM boundary_log WHERE id IN (1, 2)") == [(2, "accepted")]


def _concurrently(count: int, work) -> list:
    barrier = threading.Barrier(count)

    def run(i: int):
        barrier.wait()
        return work(i)
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def test_racing_writes_keep_the_counts_right(make_instance):
    """Writes that read before they change (follows and their counters, votes and their tallies, the
    single use of an authorisation code) give the same result when many arrive at once."""
    inst = make_instance("a", env={"CROSSTALK_PASSWORD_GRANT": "true"})
    names = [f"u{i}" for i in range(8)]
    # One CLI process at a time: processes mint ids from the clock, and until each holds a node number
    # of its own, two of them may draw the same id in the same millisecond.
    for name in ["target", *names]:
        inst.create_user(name, PASSWORD)
    tokens = {name: password_token(inst.base_url, name, PASSWORD) for name in ["target", *names]}

    def call(name: str, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, f"{inst.base_url}{path}", timeout=30,
                                headers={"Authorization": f"Bearer {tokens[name]}"}, **kwargs)

    target_id = call("target", "GET", "/api/v1/accounts/verify_credentials").json()["id"]
    # Everyone follows the target at once, twice each.
    answers = _concurrently(16, lambda i: call(names[i % 8], "POST", f"/api/v1/accounts/{target_id}/follow"))
    assert {a.status_code for a in answers} == {200}, [a.text for a in answers if a.status_code != 200]
    assert call("target", "GET", f"/api/v1/accounts/{target_id}").json()["followers_count"] == 8
    # Pairs following each other at the same moment (each follow moves both accounts' counters).
    ids = {n: call(n, "GET", "/api/v1/accounts/verify_credentials").json()["id"] for n in names}
    answers = _concurrently(8, lambda i: call(names[i], "POST", f"/api/v1/accounts/{ids[names[i ^ 1]]}/follow"))
    assert {a.status_code for a in answers} == {200}, [a.text for a in answers if a.status_code != 200]
    for name in names:
        me = call(name, "GET", "/api/v1/accounts/verify_credentials").json()
        assert (me["following_count"], me["followers_count"]) == (2, 1), (name, me)

    # A single-choice poll: everyone votes at once, some twice (for different options).
    status = call("target", "POST", "/api/v1/statuses", json={
        "status": "lunch?", "poll": {"options": ["pizza", "salad", "soup"], "expires_in": 3600}}).json()
    poll_id = status["poll"]["id"]
    votes = _concurrently(16, lambda i: call(names[i % 8], "POST", f"/api/v1/polls/{poll_id}/votes",
                                             json={"choices": [str(i // 8)]}))
    assert sorted(v.status_code for v in votes) == [200] * 8 + [422] * 8, [v.text for v in votes]
    poll = call("target", "GET", f"/api/v1/polls/{poll_id}").json()
    assert poll["votes_count"] == poll["voters_count"] == 8
    assert sum(o["votes_count"] for o in poll["options"]) == 8

    # One authorisation code, redeemed by many requests at once: exactly one gets a token.
    app = requests.post(f"{inst.base_url}/api/v1/apps", json={"client_name": "race", "redirect_uris":
                        "urn:ietf:wg:oauth:2.0:oob", "scopes": "read"}, timeout=10).json()
    auth_url = (f"{inst.base_url}/oauth/authorize?response_type=code&client_id={app['client_id']}"
                "&redirect_uri=urn:ietf:wg:oauth:2.0:oob&scope=read")
    code = authorize_in_browser(inst.base_url, auth_url, "u0", PASSWORD)
    grants = _concurrently(8, lambda i: requests.post(f"{inst.base_url}/oauth/token", timeout=30, json={
        "grant_type": "authorization_code", "code": code, "client_id": app["client_id"],
        "client_secret": app["client_secret"], "redirect_uri": "urn:ietf:wg:oauth:2.0:oob"}))
    assert sorted(g.status_code for g in grants) == [200] + [400] * 7, [g.text for g in grants]


def test_instances_started_together_share_one_instance_actor(requires_postgres, tmp_path):
    """Two processes starting on one database at once (migrations, then the instance actor): both
    come up, and there is one actor."""
    url = databases.create_empty_database()
    insts = [Instance(tmp_path / name, {"CROSSTALK_DATABASE_URL": url}) for name in ("a", "b")]
    insts[1].domain = insts[0].domain
    insts[1].env["CROSSTALK_DOMAIN"] = insts[0].domain
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda inst: inst.start(), insts))
        for inst in insts:
            assert requests.get(f"{inst.base_url}/readyz", timeout=5).json()["status"] == "ok"
        assert insts[0].sql("SELECT count(*) FROM accounts WHERE username = 'actor' AND domain = ''") == [(1,)]
    finally:
        for inst in insts:
            inst.stop()
        databases.drop_database(url)



def test_connections_dropped_by_postgres_are_replaced(requires_postgres, make_instance):
    """PostgreSQL restarting drops every connection: requests then get a clean answer (at worst 503,
    never a 500) and service resumes with no restart; workers keep running."""
    inst = make_instance("a")
    inst.create_user("alice")
    headers = {"Authorization": f"Bearer {inst.token('alice')}"}

    def post(text: str) -> int:
        return requests.post(f"{inst.base_url}/api/v1/statuses", data={"status": text}, headers=headers,
                             timeout=10).status_code

    def home() -> int:
        return requests.get(f"{inst.base_url}/api/v1/timelines/home", headers=headers, timeout=10).status_code

    assert post("before") == 200
    for _ in range(2):
        killed = inst.sql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                          " WHERE datname = current_database() AND application_name = 'crosstalk'")
        assert killed[0][0] >= 1
        codes = [f() for _ in range(6) for f in (lambda: post("during"), home)]
        assert set(codes) <= {200, 503}, codes
        assert codes[-4:] == [200] * 4, codes
    assert requests.get(f"{inst.base_url}/readyz", timeout=5).json()["status"] == "ok"
    assert "unhandled error" not in inst.log()


def test_a_migration_that_rebuilds_an_index_lets_writes_through(requires_postgres):
    """Schema 0043 rebuilds `statuses_account` beside the old one, CONCURRENTLY: while the build waits
    for a transaction that writes to statuses, other writers still write (a migration in a transaction
    would queue every write, and its DROP INDEX every read, behind its lock), and a leftover of an
    attempt that failed is replaced by the right index."""
    import asyncio

    import asyncpg

    from server.storage.postgres import PostgresDatabase

    url = databases.create_empty_database()
    now = "2026-01-01T00:00:00.000Z"

    async def post(conn: asyncpg.Connection, status_id: int) -> None:
        await conn.execute("INSERT INTO statuses (id, uri, url, account_id, local, visibility, created_at)"
                           " VALUES ($1, $2, $2, 1, 1, 'public', $3)", status_id, f"https://x.example/{status_id}", now)

    async def scenario() -> None:
        db = PostgresDatabase(url, pool_size=2)
        await db.connect()
        holder, other = await asyncpg.connect(url), await asyncpg.connect(url)
        try:
            await db.migrate(up_to=42)
            await holder.execute("INSERT INTO accounts (id, username, uri, url, created_at, updated_at)"
                                 " VALUES (1, 'ada', 'https://x.example/ada', 'https://x.example/ada', $1, $1)", now)
            await holder.execute("CREATE INDEX statuses_account_covering ON statuses (id)")  # a failed attempt's
            writing = holder.transaction()
            await writing.start()
            await post(holder, 10)
            migrating = asyncio.get_running_loop().create_task(db.migrate())
            await asyncio.sleep(1.0)
            assert not migrating.done()  # the build waits for the transaction in hand
            await other.execute("SET lock_timeout = '3s'")
            await post(other, 11)  # and other writers go on meanwhile
            assert await other.fetchval("SELECT count(*) FROM statuses WHERE account_id = 1") == 1
            await writing.commit()
            assert await asyncio.wait_for(migrating, 60) == [43]
            indexes = await other.fetch("SELECT c.relname, i.indisvalid, pg_get_indexdef(i.indexrelid) AS def"
                                        " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                                        " WHERE c.relname LIKE 'statuses_account%'")
            assert [(r["relname"], r["indisvalid"]) for r in indexes] == [("statuses_account", True)]
            assert indexes[0]["def"].endswith("(account_id, id) INCLUDE (deleted_at, visibility, reblog_of_id,"
                                              " in_reply_to_id, in_reply_to_account_id)"), indexes[0]["def"]
            assert await other.fetchval("SELECT max(version) FROM schema_migrations") == 43
        finally:
            await holder.close()
            await other.close()
            await db.close()

    try:
        asyncio.run(scenario())
    finally:
        databases.drop_database(url)


def test_the_invalidation_feed_hears_a_row_committed_after_a_newer_one(requires_postgres):
    """PostgreSQL hands out ids at insert, not at commit: a row with a smaller id can become visible
    after a reader has seen a larger one. The reader must still hear it, once (schema 0039), or a
    process would keep serving a rendering the row was meant to drop."""
    import asyncio

    import asyncpg

    from server.storage import invalidations as feed
    from server.storage.postgres import PostgresDatabase

    url = databases.create_database()

    async def scenario() -> None:
        db = PostgresDatabase(url, pool_size=2)
        await db.connect()
        slow, quick = await asyncpg.connect(url), await asyncpg.connect(url)
        try:
            position = await feed.position_now(db)
            slow_tx = slow.transaction()
            await slow_tx.start()
            await slow.execute("INSERT INTO invalidations (kind, key, created_at) VALUES ('status', 'slow', 0)")
            await quick.execute("INSERT INTO invalidations (kind, key, created_at) VALUES ('status', 'quick', 0)")
            rows, position = await feed.since(db, position)
            assert [r.key for r in rows] == ["quick"]
            await slow_tx.commit()
            rows, position = await feed.since(db, position)
            assert [r.key for r in rows] == ["slow"]  # an id below the one seen before, heard now
            ids = await slow.fetch("SELECT id, key FROM invalidations ORDER BY id")
            assert [r["key"] for r in ids] == ["slow", "quick"]
            rows, position = await feed.since(db, position)
            assert rows == []  # and not again
        finally:
            await slow.close()
            await quick.close()
            await db.close()

    try:
        asyncio.run(scenario())
    finally:
        databases.drop_database(url)


def test_connections_stay_within_the_pool_through_cancelled_reads_dropped_connections_and_failed_work(
        requires_postgres):
    """Reads and transactions borrow connections kept out of asyncpg's pool (`_Lender`). However work on
    them ends (cancelled mid-statement, the server dropping the connection while it is idle or in use,
    a transaction that fails), the process keeps at most its pool's size of connections, none is lost
    for good (later work never waits for ever), and closing returns them all."""
    import asyncio
    import contextlib

    import asyncpg

    from server.storage.errors import DatabaseUnavailable, IntegrityError
    from server.storage.postgres import PostgresDatabase

    url = databases.create_database()
    ours = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'crosstalk' AND pid <> pg_backend_pid()")

    async def scenario() -> None:
        db = PostgresDatabase(url, pool_size=3)
        await db.connect()
        try:
            async def busy(n: int) -> list[int]:
                answers = await asyncio.gather(*(db.fetchval("SELECT ?::integer", (i,)) for i in range(n)))
                return list(answers)

            assert await busy(40) == list(range(40))
            assert await db.fetchval(ours) <= 3

            # Reads cancelled mid-statement: their connections go back to the pool, their places are freed.
            sleepers = [asyncio.ensure_future(db.fetchall("SELECT pg_sleep(5)")) for _ in range(6)]
            await asyncio.sleep(0.3)
            for task in sleepers:
                task.cancel()
            await asyncio.gather(*sleepers, return_exceptions=True)
            assert await asyncio.wait_for(busy(20), 10) == list(range(20))

            # The server drops every connection, idle and busy: the read under way is tried once more on
            # a new one, what fails fails cleanly, then all works.
            slow = asyncio.ensure_future(db.fetchval("SELECT 7 FROM pg_sleep(1)"))
            await asyncio.sleep(0.3)
            admin = await asyncpg.connect(url)
            try:
                await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                    " WHERE datname = current_database() AND application_name = 'crosstalk'")
            finally:
                await admin.close()
            assert await asyncio.wait_for(slow, 10) == 7
            for _ in range(3):
                with contextlib.suppress(DatabaseUnavailable):
                    await db.fetchval("SELECT 1")
            assert await asyncio.wait_for(busy(20), 10) == list(range(20))

            # Transactions that fail (the database refuses a row; the caller raises) leave nothing open.
            await db.execute("CREATE TABLE lent (id INTEGER PRIMARY KEY)")
            for _ in range(5):
                with pytest.raises(IntegrityError):
                    async with db.transaction() as tx:
                        await tx.execute("INSERT INTO lent (id) VALUES (1), (1)")
                with pytest.raises(RuntimeError):
                    async with db.transaction() as tx:
                        await tx.execute("INSERT INTO lent (id) VALUES (2)")
                        raise RuntimeError("changed my mind")
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO lent (id) VALUES (3)")
            assert [tuple(r) for r in await db.fetchall("SELECT id FROM lent")] == [(3,)]
            assert await asyncio.wait_for(busy(20), 10) == list(range(20))
            assert await db.fetchval(ours) <= 3
        finally:
            await asyncio.wait_for(db.close(), 10)

    try:
        asyncio.run(scenario())
    finally:
        databases.drop_database(url)


class _StandInConnection:
    def is_closed(self) -> bool:
        return False

    def is_in_transaction(self) -> bool:
        return False


class _StandInPool:
    """What the lender asks of asyncpg's pool, counting the connections out."""

    def __init__(self) -> None:
        self.acquired = 0

    async def acquire(self) -> _StandInConnection:
        self.acquired += 1
        return _StandInConnection()

    async def release(self, conn: _StandInConnection) -> None:
        self.acquired -= 1


def test_a_connection_handed_to_a_borrower_cancelled_meanwhile_goes_to_the_next_one():
    """The lender's hand-over race, on a stand-in pool: a borrower waiting for a connection is handed one
    and cancelled before it resumes; the connection must go on to the next borrower, not be lost."""
    import asyncio

    from server.storage.postgres import _Lender

    async def scenario() -> None:
        pool = _StandInPool()
        lender = _Lender(pool, 1)  # type: ignore[arg-type]
        first = await lender.take()
        waiting = asyncio.ensure_future(lender.take())
        await asyncio.sleep(0)  # queued behind the one connection
        lender.give_back(first)  # handed to the waiting borrower...
        waiting.cancel()  # ...which is cancelled before it runs again
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert await asyncio.wait_for(lender.take(), 1) is first
        assert pool.acquired == 1
        lender.give_back(first)
        await lender.close()
        assert pool.acquired == 0

    asyncio.run(scenario())


def test_connections_nobody_uses_go_back_to_the_pool_but_one():
    """After a busy moment the lender holds what it needed then; connections idle for its idle time go
    back to the pool (which closes them), the freshest one excepted, as asyncpg's pool does itself."""
    import asyncio

    from server.storage.postgres import _Lender

    async def scenario() -> None:
        pool = _StandInPool()
        lender = _Lender(pool, 5, idle_seconds=0.2)  # type: ignore[arg-type]
        lent = [await lender.take() for _ in range(4)]
        assert pool.acquired == 4
        for conn in lent[:3]:
            lender.give_back(conn)
        await asyncio.sleep(0.1)
        lender.give_back(lent[3])  # the freshest
        await asyncio.sleep(0.15)  # the first three have been idle for 0.25 s, the last for 0.15
        assert pool.acquired == 1
        await asyncio.sleep(0.3)
        assert pool.acquired == 1  # one always stays
        assert await lender.take() is lent[3]
        lender.give_back(lent[3])
        await lender.close()
        assert pool.acquired == 0

    asyncio.run(scenario())

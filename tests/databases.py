"""The database each test instance runs on: its own SQLite file (the default), or, when
CROSSTALK_TEST_DATABASE_URL names a PostgreSQL server, its own fresh PostgreSQL database.

Fresh databases are copies of a template that already holds the migrated schema (CREATE DATABASE ...
TEMPLATE is a file copy, far quicker than running the migrations each time). A background thread keeps
a couple of them ready and drops used ones, so tests rarely wait for either. Every database this
process creates is named `<prefix>_<pid>_...` and dropped when its instance is disposed of, or at the
end of the session; databases left behind by test processes that no longer run are dropped at start.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import os
import re
import sqlite3
import threading
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

TEST_DATABASE_URL = os.environ.get("CROSSTALK_TEST_DATABASE_URL", "").strip()
PREFIX = os.environ.get("CROSSTALK_TEST_DATABASE_PREFIX", "crosstalk_test").strip()
HOW_TO_ENABLE = ("PostgreSQL tests need a server: set CROSSTALK_TEST_DATABASE_URL="
                 "postgresql://postgres@127.0.0.1:5432/postgres (see README, 'Running with PostgreSQL')")

T = TypeVar("T")

READY = 2  # fresh databases kept waiting for the next instances

_counter = itertools.count(1)
_created: set[str] = set()
_template: str | None = None
_lock = threading.Lock()
_background = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="test-databases")
_ready: list[concurrent.futures.Future[str]] = []


def postgres_enabled() -> bool:
    return bool(TEST_DATABASE_URL)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to the end from synchronous test code, even inside a running event loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def url_for(name: str) -> str:
    """The test server's URL with another database name."""
    parts = urlsplit(TEST_DATABASE_URL)
    return urlunsplit(parts._replace(path="/" + name))


async def _admin(statements: Sequence[str]) -> None:
    import asyncpg
    conn = await asyncpg.connect(TEST_DATABASE_URL, timeout=10)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


def check_server() -> str | None:
    """None if the PostgreSQL test server answers, else why not."""
    async def probe() -> None:
        import asyncpg
        conn = await asyncpg.connect(TEST_DATABASE_URL, timeout=10)
        await conn.close()
    try:
        run_sync(probe())
    except Exception as exc:
        return f"{exc.__class__.__name__}: {exc}"
    return None


def _ensure_template() -> str:
    global _template
    if _template is None:
        from server.storage.postgres import PostgresDatabase
        name = f"{PREFIX}_{os.getpid()}_template"
        run_sync(_admin([f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"']))
        _created.add(name)

        async def migrate() -> None:
            db = PostgresDatabase(url_for(name), pool_size=1)
            await db.open()
            await db.close()
        run_sync(migrate())
        _template = name
    return _template


def _copy_template() -> str:
    template = _ensure_template()
    name = f"{PREFIX}_{os.getpid()}_{next(_counter)}"
    with _lock:
        _created.add(name)
    run_sync(_admin([f'CREATE DATABASE "{name}" TEMPLATE "{template}"']))
    return name


def create_database() -> str:
    """A new PostgreSQL database with the current schema; returns its URL."""
    with _lock:
        while len(_ready) < READY + 1:
            _ready.append(_background.submit(_copy_template))
        next_one = _ready.pop(0)
    return url_for(next_one.result())


def create_empty_database() -> str:
    """A new PostgreSQL database without any tables (for tests of migrations and restores)."""
    name = f"{PREFIX}_{os.getpid()}_{next(_counter)}"
    with _lock:
        _created.add(name)
    run_sync(_admin([f'CREATE DATABASE "{name}"']))
    return url_for(name)


def drop_database(url: str) -> None:
    """Drop a database made here, in the background (its instance is stopped)."""
    name = urlsplit(url).path.lstrip("/")
    with _lock:
        if name not in _created:
            return
        _created.discard(name)
    _background.submit(run_sync, _admin([f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)']))


def drop_all() -> None:
    """Everything this process created (the end of the session), once the background work is done."""
    with _lock:
        waiting, _ready[:] = list(_ready), []
    concurrent.futures.wait(waiting)
    _background.shutdown(wait=True)
    with _lock:
        names = sorted(_created)
        _created.clear()
    if names:
        run_sync(_admin([f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in names]))


def drop_abandoned() -> None:
    """Databases of earlier test processes on this machine that are gone (killed runs)."""
    async def sweep() -> None:
        import asyncpg
        conn = await asyncpg.connect(TEST_DATABASE_URL, timeout=10)
        try:
            names = [r[0] for r in await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1",
                                                     PREFIX.replace("_", "\\_") + "\\_%")]
            for name in names:
                match = re.fullmatch(rf"{re.escape(PREFIX)}_(\d+)_\w+", name)
                if match and not _alive(int(match.group(1))):
                    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
    run_sync(sweep())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def query(database_url: str | None, sqlite_path: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run one statement (with `?` placeholders) on an instance's database, whichever it is, and
    return its rows; a failing statement raises RuntimeError with the database's message."""
    if database_url:
        from server.storage.postgres import to_postgres

        async def run() -> list[tuple[Any, ...]]:
            import asyncpg
            conn = await asyncpg.connect(database_url, timeout=10)
            try:
                return [tuple(r) for r in await conn.fetch(to_postgres(sql), *params)]
            except asyncpg.PostgresError as exc:
                raise RuntimeError(str(exc)) from exc
            finally:
                await conn.close()
        return run_sync(run())
    conn = sqlite3.connect(sqlite_path, timeout=10)
    try:
        with conn:
            return [tuple(r) for r in conn.execute(sql, params).fetchall()]
    except sqlite3.Error as exc:
        raise RuntimeError(str(exc)) from exc
    finally:
        conn.close()

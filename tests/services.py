"""Tests that need PostgreSQL, Redis or NATS: they skip with a message on a machine without them, and
fail instead when CROSSTALK_TEST_REQUIRE_SERVICES is set (CI), so they are never skipped silently."""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import os
import socket
from collections.abc import Coroutine, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

REDIS_URL = os.environ.get("CROSSTALK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NATS_URL = os.environ.get("CROSSTALK_TEST_NATS_URL", "nats://127.0.0.1:4222")
HOW = "see the README's Quick start (tests) and 'Scaling out' for how to start it"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require(name: str, url: str) -> str:
    """`url` if its server answers; otherwise skip (or fail in CI) with a message saying how to run it."""
    parts = urlsplit(url)
    defaults = {"postgresql": 5432, "postgres": 5432, "redis": 6379, "nats": 4222}
    if not _reachable(parts.hostname or "127.0.0.1", parts.port or defaults.get(parts.scheme, 80)):
        message = f"{name} is not reachable at {url}: {HOW}"
        if os.environ.get("CROSSTALK_TEST_REQUIRE_SERVICES"):
            pytest.fail(message)
        pytest.skip(message)
    return url


def require_binary(name: str, install: str) -> str:
    """The path of program `name`; otherwise skip (or fail in CI) saying how to install it."""
    import shutil
    found = shutil.which(name)
    if found is None:
        message = f"{name} is not installed: {install}"
        if os.environ.get("CROSSTALK_TEST_REQUIRE_SERVICES"):
            pytest.fail(message)
        pytest.skip(message)
    return found


# A PostgreSQL server for tests that need one whatever engine the suite runs on (moving an instance
# from SQLite to PostgreSQL, several processes sharing one database).
_scratch_counter = itertools.count(1)
POSTGRES_URL = (os.environ.get("CROSSTALK_TEST_DATABASE_URL", "").strip()
                or os.environ.get("CROSSTALK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))


def scratch_postgres() -> Iterator[str]:
    """Generator for a fixture: the URL of a new, empty PostgreSQL database, dropped afterwards (named
    like tests/databases.py's, so a killed run's leftovers are swept at the next start)."""
    import asyncpg

    admin = require("PostgreSQL", POSTGRES_URL)
    prefix = os.environ.get("CROSSTALK_TEST_DATABASE_PREFIX", "crosstalk_test").strip()
    name = f"{prefix}_{os.getpid()}_scratch{next(_scratch_counter)}"

    async def statement(sql: str) -> None:
        conn = await asyncpg.connect(admin, timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def run(coro: Coroutine[Any, Any, None]) -> None:  # on a thread of its own: callers may be in a loop
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, coro).result()

    run(statement(f'CREATE DATABASE "{name}"'))
    try:
        yield urlunsplit(urlsplit(admin)._replace(path="/" + name))
    finally:
        run(statement(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

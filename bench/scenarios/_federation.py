"""Shared by the inbox and delivery scenarios: the instance's federation settings, remote accounts
written straight into a private dataset copy, and polling the database and the sink."""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from server.ids import new_id, now_iso

# Open federation (blocklist mode) with loopback peers allowed, as tests/federation_e2e does.
FEDERATION_ENV = {
    "CROSSTALK_FEDERATION_MODE": "blocklist",
    "CROSSTALK_FEDERATION_ALLOWED_PRIVATE_ADDRESSES": "127.0.0.0/8",
    "CROSSTALK_LOG_LEVEL": "warning",
}


def add_remote_accounts(db_path: Path, accounts: list[dict[str, Any]], follows: list[tuple[int, int]],
                        local_updates: list[tuple[str, tuple[Any, ...]]] = ()) -> None:  # type: ignore[assignment]
    """Insert remote accounts (dicts with id, username, domain, uri, inbox_url and optional key fields)
    and follows (follower id, followed id), keeping the follow counters right; then any `local_updates`
    (sql, params) statements. The server is not running: plain sqlite3 on the copy."""
    now = now_iso()
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO accounts (id, username, domain, display_name, uri, url, inbox_url, shared_inbox_url,"
            " outbox_url, followers_url, following_url, public_key_pem, key_id, created_at, updated_at, fetched_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(a["id"], a["username"], a["domain"], a["username"].title(), a["uri"], a["uri"], a["inbox_url"],
              a.get("shared_inbox_url", ""), f"{a['uri']}/outbox", f"{a['uri']}/followers", f"{a['uri']}/following",
              a.get("public_key_pem", ""), a.get("key_id", ""), now, now, a.get("fetched_at", now))
             for a in accounts])
        conn.executemany("INSERT INTO follows (id, account_id, target_account_id, uri, created_at) VALUES (?, ?, ?, ?, ?)",
                         [(new_id(), f, t, None, now) for f, t in follows])
        for follower, target in follows:
            conn.execute("UPDATE accounts SET following_count = following_count + 1 WHERE id = ?", (follower,))
            conn.execute("UPDATE accounts SET followers_count = followers_count + 1 WHERE id = ?", (target,))
        for sql, params in local_updates:
            conn.execute(sql, params)
        conn.execute("COMMIT")
    finally:
        conn.close()


def db_value(db_path: Path, sql: str, params: tuple[Any, ...] = ()) -> Any:
    """One value read from the (running) instance's database, read-only (WAL lets it read alongside)."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql, params).fetchone()[0]
    finally:
        conn.close()


async def wait_until(check: Callable[[], Any], done: Callable[[Any], bool], limit_s: float,
                     interval: float = 0.1) -> tuple[Any, float, bool]:
    """Poll `check` (a coroutine function, or a plain one run in a thread) until `done(value)`, at most `limit_s` seconds: (last value, the
    time.monotonic() at which it was seen, whether it was reached)."""
    deadline = time.monotonic() + limit_s
    while True:
        value = await check() if inspect.iscoroutinefunction(check) else await asyncio.to_thread(check)
        seen = time.monotonic()
        if done(value):
            return value, seen, True
        if seen > deadline:
            return value, seen, False
        await asyncio.sleep(interval)


async def sink_stats(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(
            f"{url}/_stats", timeout=aiohttp.ClientTimeout(total=10)) as resp:
        return await resp.json()


async def sink_reset(url: str) -> None:
    async with aiohttp.ClientSession() as session, session.post(
            f"{url}/_reset", timeout=aiohttp.ClientTimeout(total=10)) as resp:
        resp.raise_for_status()

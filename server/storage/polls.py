"""Polls and their votes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from server.domain.records import Poll, columns
from server.ids import new_id, now_iso
from server.ports import Reader, Tx
from server.storage.dialect import marks

_COLS = columns(Poll)
_COLS_P = columns(Poll, "p")


def _poll(row: Any) -> Poll:
    data = dict(row)
    data["options"] = msgspec.json.decode(data["options"])
    data["tallies"] = msgspec.json.decode(data["tallies"])
    return Poll(**data)


async def insert(tx: Tx, *, status_id: int, account_id: int, options: list[str], multiple: bool, hide_totals: bool,
                 expires_at: str | None, tallies: list[int] | None = None, voters_count: int = 0) -> int:
    """A poll for a status; remote polls pass the tallies their server reported."""
    poll_id = new_id()
    counts = tallies if tallies is not None else [0] * len(options)
    now = now_iso()
    await tx.execute(
        f"INSERT INTO polls ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
        (poll_id, status_id, account_id, msgspec.json.encode(options).decode(), msgspec.json.encode(counts).decode(),
         int(multiple), int(hide_totals), expires_at, sum(counts), voters_count, now, now))
    return poll_id


async def get(db: Reader, poll_id: int) -> Poll | None:
    row = await db.fetchone(f"SELECT {_COLS} FROM polls WHERE id = ?", (poll_id,))
    return None if row is None else _poll(row)


async def for_statuses(db: Reader, status_ids: Iterable[int]) -> dict[int, Poll]:
    """status id → its poll, for a page of statuses in one query."""
    ids = list(set(status_ids))
    if not ids:
        return {}
    rows = await db.fetchall(f"SELECT {_COLS} FROM polls WHERE status_id IN ({marks(len(ids))})", ids)
    return {r["status_id"]: _poll(r) for r in rows}


async def own_votes(db: Reader, account_id: int, poll_ids: Iterable[int]) -> dict[int, list[int]]:
    """poll id → the choices this account made (polls it did not vote in are absent)."""
    ids = list(set(poll_ids))
    if not ids:
        return {}
    rows = await db.fetchall(
        f"SELECT poll_id, choice FROM poll_votes WHERE account_id = ? AND poll_id IN ({marks(len(ids))})"
        " ORDER BY poll_id, choice", [account_id, *ids])
    out: dict[int, list[int]] = {}
    for r in rows:
        out.setdefault(r[0], []).append(r[1])
    return out


async def lock(tx: Tx, poll_id: int) -> None:
    """Votes on one poll take turns from here to the end of the transaction, so checks such as
    has_voted see every vote before this one (PostgreSQL row lock; SQLite has one writer anyway)."""
    await tx.execute(f"SELECT id FROM polls WHERE id = ?{tx.dialect.for_update}", (poll_id,))


async def has_voted(db: Reader, poll_id: int, account_id: int) -> bool:
    return await db.fetchval("SELECT 1 FROM poll_votes WHERE poll_id = ? AND account_id = ? LIMIT 1",
                             (poll_id, account_id)) is not None


async def add_votes(tx: Tx, poll_id: int, account_id: int, choices: list[int], uri: str | None = None) -> None:
    """Record one voter's choices and move the cached counts in the same transaction."""
    now = now_iso()
    await tx.executemany(
        "INSERT INTO poll_votes (id, poll_id, account_id, choice, uri, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        [(new_id(), poll_id, account_id, c, uri, now) for c in choices])
    tallies = msgspec.json.decode(await tx.fetchval(f"SELECT tallies FROM polls WHERE id = ?{tx.dialect.for_update}",
                                                    (poll_id,)))
    for c in choices:
        tallies[c] += 1
    await tx.execute(
        "UPDATE polls SET tallies = ?, votes_count = votes_count + ?, voters_count = voters_count + 1, updated_at = ?"
        " WHERE id = ?", (msgspec.json.encode(tallies).decode(), len(choices), now, poll_id))


async def ended_unnotified(db: Reader, now: str, limit: int = 100) -> list[Poll]:
    """Polls of live statuses that have ended and whose end nobody has been told about yet."""
    rows = await db.fetchall(
        f"SELECT {_COLS_P} FROM polls p"
        " JOIN statuses s ON s.id = p.status_id"
        " WHERE p.ended_notified = 0 AND p.expires_at IS NOT NULL AND p.expires_at <= ? AND s.deleted_at IS NULL"
        " ORDER BY p.expires_at LIMIT ?", (now, limit))
    return [_poll(r) for r in rows]


async def claim_ended(tx: Tx, poll_id: int) -> bool:
    """Mark a poll's end as announced; False if someone already did (so it happens once)."""
    return bool(await tx.execute("UPDATE polls SET ended_notified = 1 WHERE id = ? AND ended_notified = 0",
                                 (poll_id,)))


async def local_voter_ids(db: Reader, poll_id: int) -> list[int]:
    rows = await db.fetchall(
        "SELECT DISTINCT v.account_id FROM poll_votes v JOIN accounts a ON a.id = v.account_id AND a.domain = ''"
        " WHERE v.poll_id = ?", (poll_id,))
    return [r[0] for r in rows]


async def set_remote_tallies(tx: Tx, poll_id: int, tallies: list[int], voters_count: int | None,
                             expires_at: str | None) -> None:
    """A remote poll's counts as its own server reports them (Update of the Question)."""
    await tx.execute(
        "UPDATE polls SET tallies = ?, votes_count = ?, voters_count = coalesce(?, voters_count),"
        " expires_at = coalesce(?, expires_at), updated_at = ? WHERE id = ?",
        (msgspec.json.encode(tallies).decode(), sum(tallies), voters_count, expires_at, now_iso(), poll_id))


async def vote_exists(db: Reader, poll_id: int, account_id: int, choice: int) -> bool:
    return await db.fetchval("SELECT 1 FROM poll_votes WHERE poll_id = ? AND account_id = ? AND choice = ?",
                             (poll_id, account_id, choice)) is not None

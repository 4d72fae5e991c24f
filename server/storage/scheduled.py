"""Statuses waiting to be posted at a later time."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from server.domain.records import ScheduledStatus, columns
from server.ids import now_iso
from server.ports import Reader, Tx
from server.storage.paging import Page, newest_first, window

_COLS = columns(ScheduledStatus)


def _row(row: Any) -> ScheduledStatus:
    return ScheduledStatus(**dict(row))


async def insert(tx: Tx, scheduled_id: int, account_id: int, scheduled_at: str, params: str) -> ScheduledStatus:
    item = ScheduledStatus(id=scheduled_id, account_id=account_id, scheduled_at=scheduled_at, params=params,
                           created_at=now_iso())
    await tx.execute(f"INSERT INTO scheduled_statuses ({_COLS}) VALUES (?, ?, ?, ?, ?)",
                     (item.id, item.account_id, item.scheduled_at, item.params, item.created_at))
    return item


async def get(db: Reader, account_id: int, scheduled_id: int) -> ScheduledStatus | None:
    row = await db.fetchone(f"SELECT {_COLS} FROM scheduled_statuses WHERE id = ? AND account_id = ?",
                            (scheduled_id, account_id))
    return None if row is None else _row(row)


async def page_for(db: Reader, account_id: int, page: Page) -> list[ScheduledStatus]:
    cond, params, order = window("id", page)
    rows = await db.fetchall(
        f"SELECT {_COLS} FROM scheduled_statuses WHERE account_id = ?{cond} ORDER BY {order} LIMIT ?",
        [account_id, *params, page.limit])
    return [_row(r) for r in newest_first(rows, page, key=lambda r: r["id"])]


async def count_for(db: Reader, account_id: int) -> int:
    return await db.fetchval("SELECT count(*) FROM scheduled_statuses WHERE account_id = ?", (account_id,)) or 0


async def count_on_day(db: Reader, account_id: int, day: str) -> int:
    """How many of the account's statuses are scheduled on a UTC day (YYYY-MM-DD)."""
    return await db.fetchval(
        "SELECT count(*) FROM scheduled_statuses WHERE account_id = ? AND substr(scheduled_at, 1, 10) = ?",
        (account_id, day)) or 0


async def reschedule(tx: Tx, account_id: int, scheduled_id: int, scheduled_at: str) -> bool:
    return bool(await tx.execute("UPDATE scheduled_statuses SET scheduled_at = ? WHERE id = ? AND account_id = ?",
                                 (scheduled_at, scheduled_id, account_id)))


async def delete(tx: Tx, scheduled_id: int, account_id: int | None = None) -> bool:
    if account_id is None:
        return bool(await tx.execute("DELETE FROM scheduled_statuses WHERE id = ?", (scheduled_id,)))
    return bool(await tx.execute("DELETE FROM scheduled_statuses WHERE id = ? AND account_id = ?",
                                 (scheduled_id, account_id)))


async def due(db: Reader, now: str, limit: int = 50) -> list[ScheduledStatus]:
    rows = await db.fetchall(f"SELECT {_COLS} FROM scheduled_statuses WHERE scheduled_at <= ? ORDER BY scheduled_at"
                             " LIMIT ?", (now, limit))
    return [_row(r) for r in rows]


async def unattached_media(db: Reader, account_id: int, media_ids: Iterable[int]) -> list[Any]:
    """The account's media rows among these ids that no status uses yet, in the order asked for."""
    ids = list(media_ids)
    if not ids:
        return []
    rows = await db.fetchall(
        f"SELECT * FROM media_attachments WHERE account_id = ? AND status_id IS NULL AND id IN ({','.join('?' * len(ids))})",
        [account_id, *ids])
    by_id = {r["id"]: r for r in rows}
    return [by_id[i] for i in ids if i in by_id]


async def media_rows(db: Reader, account_id: int, media_ids: Iterable[int]) -> list[Any]:
    """The account's media rows among these ids (attached or not), in the order asked for."""
    ids = list(media_ids)
    if not ids:
        return []
    rows = await db.fetchall(
        f"SELECT * FROM media_attachments WHERE account_id = ? AND id IN ({','.join('?' * len(ids))})",
        [account_id, *ids])
    by_id = {r["id"]: r for r in rows}
    return [by_id[i] for i in ids if i in by_id]

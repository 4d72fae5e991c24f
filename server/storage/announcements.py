"""Announcements, who has read them, and the emoji reactions on them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from server.domain.records import Announcement, columns
from server.ids import new_id, now_iso
from server.ports import Reader, Tx
from server.storage.dialect import marks

_COLS = columns(Announcement)
# Mastodon's order: by the event's start if it has one, else by publication.
_CHRONOLOGICAL = "coalesce(starts_at, published_at), id"


def _row(row: Any) -> Announcement:
    return Announcement(**dict(row))


async def insert(tx: Tx, *, text: str, content: str, starts_at: str | None, ends_at: str | None, all_day: bool,
                 mention_ids: Iterable[int]) -> Announcement:
    now = now_iso()
    item = Announcement(id=new_id(), text=text, content=content, starts_at=starts_at, ends_at=ends_at,
                        all_day=all_day, published=True, published_at=now, created_at=now, updated_at=now)
    await tx.execute(f"INSERT INTO announcements ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (item.id, item.text, item.content, item.starts_at, item.ends_at, int(item.all_day),
                      int(item.published), item.published_at, item.created_at, item.updated_at))
    await tx.executemany("INSERT INTO announcement_mentions (announcement_id, account_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                         [(item.id, a) for a in mention_ids])
    return item


async def get(db: Reader, announcement_id: int) -> Announcement | None:
    row = await db.fetchone(f"SELECT {_COLS} FROM announcements WHERE id = ?", (announcement_id,))
    return None if row is None else _row(row)


async def active(db: Reader, now: str) -> list[Announcement]:
    """Published announcements that have not ended yet, oldest first."""
    rows = await db.fetchall(
        f"SELECT {_COLS} FROM announcements WHERE published = 1 AND (ends_at IS NULL OR ends_at > ?)"
        f" ORDER BY {_CHRONOLOGICAL}", (now,))
    return [_row(r) for r in rows]


async def every(db: Reader) -> list[Announcement]:
    rows = await db.fetchall(f"SELECT {_COLS} FROM announcements ORDER BY {_CHRONOLOGICAL}")
    return [_row(r) for r in rows]


async def delete(tx: Tx, announcement_id: int) -> bool:
    return bool(await tx.execute("DELETE FROM announcements WHERE id = ?", (announcement_id,)))


async def mentions_for(db: Reader, ids: list[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    if ids:
        rows = await db.fetchall(
            f"SELECT announcement_id, account_id FROM announcement_mentions WHERE announcement_id IN ({marks(len(ids))})",
            ids)
        for r in rows:
            out.setdefault(r[0], []).append(r[1])
    return out


async def read_ids(db: Reader, account_id: int, ids: list[int]) -> set[int]:
    if not ids:
        return set()
    rows = await db.fetchall(
        f"SELECT announcement_id FROM announcement_reads WHERE account_id = ? AND announcement_id IN ({marks(len(ids))})",
        [account_id, *ids])
    return {r[0] for r in rows}


async def mark_read(tx: Tx, announcement_id: int, account_id: int) -> None:
    await tx.execute("INSERT INTO announcement_reads (announcement_id, account_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                     (announcement_id, account_id))


async def reactions_for(db: Reader, ids: list[int], viewer_id: int | None) -> dict[int, list[tuple[str, int, bool]]]:
    """announcement id → [(name, count, whether the viewer reacted)], in the order reactions first appeared."""
    out: dict[int, list[tuple[str, int, bool]]] = {}
    if not ids:
        return out
    rows = await db.fetchall(
        "SELECT announcement_id, name, count(*), max(CASE WHEN account_id = ? THEN 1 ELSE 0 END), min(id)"
        " FROM announcement_reactions"
        f" WHERE announcement_id IN ({marks(len(ids))}) GROUP BY announcement_id, name ORDER BY announcement_id, min(id)",
        [viewer_id if viewer_id is not None else -1, *ids])
    for r in rows:
        out.setdefault(r[0], []).append((r[1], r[2], bool(r[3])))
    return out


async def reaction_count(db: Reader, announcement_id: int, name: str) -> int:
    return await db.fetchval("SELECT count(*) FROM announcement_reactions WHERE announcement_id = ? AND name = ?",
                             (announcement_id, name)) or 0


async def reaction_names(db: Reader, announcement_id: int) -> set[str]:
    rows = await db.fetchall("SELECT DISTINCT name FROM announcement_reactions WHERE announcement_id = ?",
                             (announcement_id,))
    return {r[0] for r in rows}


async def add_reaction(tx: Tx, announcement_id: int, account_id: int, name: str) -> bool:
    """False when the account already reacted with this emoji."""
    return bool(await tx.execute(
        "INSERT INTO announcement_reactions (id, announcement_id, account_id, name, created_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", (new_id(), announcement_id, account_id, name, now_iso())))


async def remove_reaction(tx: Tx, announcement_id: int, account_id: int, name: str) -> bool:
    return bool(await tx.execute(
        "DELETE FROM announcement_reactions WHERE announcement_id = ? AND account_id = ? AND name = ?",
        (announcement_id, account_id, name)))


async def local_account_ids(db: Reader) -> list[int]:
    """Everyone an announcement event goes to: the local users."""
    return [r[0] for r in await db.fetchall("SELECT account_id FROM users")]

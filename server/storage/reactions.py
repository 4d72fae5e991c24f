"""Emoji reactions on statuses (the status_reactions table, shared with the inbox)."""

from __future__ import annotations

from server.ids import new_id, now_iso
from server.ports import Reader, Tx


async def add(tx: Tx, account_id: int, status_id: int, name: str, uri: str | None) -> bool:
    return bool(await tx.execute(
        "INSERT INTO status_reactions (id, account_id, status_id, name, uri, created_at) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (account_id, status_id, name) DO NOTHING",
        (new_id(), account_id, status_id, name, uri, now_iso())))


async def remove(tx: Tx, account_id: int, status_id: int, name: str | None, uri: str | None = None) -> list[str]:
    """Remove one reaction (by name, or by the id of its activity); returns the names removed."""
    rows = await tx.fetchall(
        "SELECT name FROM status_reactions WHERE account_id = ? AND status_id = ? AND (name = ? OR uri = ?)",
        (account_id, status_id, name, uri))
    names = [r[0] for r in rows]
    for found in names:
        await tx.execute("DELETE FROM status_reactions WHERE account_id = ? AND status_id = ? AND name = ?",
                         (account_id, status_id, found))
    return names


async def has(db: Reader, account_id: int, status_id: int, name: str) -> bool:
    return await db.fetchval("SELECT 1 FROM status_reactions WHERE account_id = ? AND status_id = ? AND name = ?",
                             (account_id, status_id, name)) is not None


async def summary(db: Reader, status_id: int, viewer_id: int | None) -> list[tuple[str, int, bool, list[int]]]:
    """(name, count, viewer reacted, account ids) per emoji, the most used first."""
    rows = await db.fetchall("SELECT name, account_id FROM status_reactions WHERE status_id = ? ORDER BY id",
                             (status_id,))
    grouped: dict[str, list[int]] = {}
    for name, account_id in rows:
        grouped.setdefault(name, []).append(account_id)
    ordered = sorted(grouped.items(), key=lambda item: (-len(item[1]), item[0]))
    return [(name, len(ids), viewer_id in ids, ids) for name, ids in ordered]


async def has_uri(db: Reader, account_id: int, status_id: int, uri: str) -> bool:
    """Whether the account's reaction on the status came with this activity id."""
    return await db.fetchval("SELECT 1 FROM status_reactions WHERE account_id = ? AND status_id = ? AND uri = ?",
                             (account_id, status_id, uri)) is not None


async def counts_for(db: Reader, status_ids: list[int], viewer_id: int | None) -> dict[int, list[tuple[str, int, bool]]]:
    """status id → (emoji, count, viewer reacted) for a page of statuses in one query, most used first."""
    if not status_ids:
        return {}
    rows = await db.fetchall(
        "SELECT status_id, name, count(*), max(CASE WHEN account_id = ? THEN 1 ELSE 0 END) FROM status_reactions"
        f" WHERE status_id IN ({','.join('?' * len(status_ids))}) GROUP BY status_id, name",
        (viewer_id, *status_ids))
    out: dict[int, list[tuple[str, int, bool]]] = {}
    for status_id, name, count, me in rows:
        out.setdefault(status_id, []).append((name, count, bool(me)))
    for found in out.values():
        found.sort(key=lambda r: (-r[1], r[0]))
    return out

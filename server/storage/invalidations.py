"""The invalidation feed: rows every process reads to drop what it holds in memory."""

from __future__ import annotations

import msgspec

from server.ports import Reader, Tx


class Invalidation(msgspec.Struct, frozen=True):
    id: int
    kind: str
    key: str


async def append(tx: Tx, kind: str, key: str, now: float) -> None:
    await tx.execute("INSERT INTO invalidations (kind, key, created_at) VALUES (?, ?, ?)", (kind, key, now))


async def latest_id(db: Reader) -> int:
    return int(await db.fetchval("SELECT coalesce(max(id), 0) FROM invalidations") or 0)


async def since(db: Reader, after_id: int, limit: int = 1000) -> list[Invalidation]:
    rows = await db.fetchall("SELECT id, kind, key FROM invalidations WHERE id > ? ORDER BY id LIMIT ?",
                             (after_id, limit))
    return [Invalidation(r["id"], r["kind"], r["key"]) for r in rows]


async def prune(tx: Tx, before: float) -> None:
    await tx.execute("DELETE FROM invalidations WHERE created_at < ?", (before,))

"""The invalidation feed: rows every process reads to drop what it holds in memory."""

from __future__ import annotations

import msgspec

from server.ports import Reader, Tx


class Invalidation(msgspec.Struct, frozen=True):
    id: int
    kind: str
    key: str


class FeedPosition(msgspec.Struct, frozen=True):
    """How far a reader has read the feed. Where ids come in commit order (SQLite), `last_id` says it
    all. Where they do not (PostgreSQL, schema/postgres/0039), `horizon` is the oldest transaction
    that was still running when the reader last read (every row it could not see yet has a transaction
    id at least that), and `seen` the ids of the rows it read from such transactions."""
    last_id: int = 0
    horizon: int = 0
    seen: frozenset[int] = frozenset()


async def append(tx: Tx, kind: str, key: str, now: float) -> None:
    await tx.execute("INSERT INTO invalidations (kind, key, created_at) VALUES (?, ?, ?)", (kind, key, now))


async def position_now(db: Reader) -> FeedPosition:
    """A position from which a new reader hears only what is written from now on."""
    horizon_sql = db.dialect.snapshot_horizon
    last_id = int(await db.fetchval("SELECT coalesce(max(id), 0) FROM invalidations") or 0)
    if horizon_sql is None:
        return FeedPosition(last_id=last_id)
    # Rows of transactions still running are not seen yet: they are what the reader must hear.
    rows = await db.fetchall(f"SELECT h.horizon, i.id FROM (SELECT {horizon_sql} AS horizon) h"
                             " LEFT JOIN invalidations i ON i.xid >= h.horizon", ())
    return FeedPosition(last_id=last_id, horizon=int(rows[0][0]),
                        seen=frozenset(int(r[1]) for r in rows if r[1] is not None))


async def since(db: Reader, position: FeedPosition, limit: int = 1000
                ) -> tuple[list[Invalidation], FeedPosition]:
    """The rows committed since `position`, in id order, and the position after them (at most `limit`
    where ids come in commit order: call again while the answer is full)."""
    horizon_sql = db.dialect.snapshot_horizon
    if horizon_sql is None:
        rows = await db.fetchall("SELECT id, kind, key FROM invalidations WHERE id > ? ORDER BY id LIMIT ?",
                                 (position.last_id, limit))
        found = [Invalidation(r[0], r[1], r[2]) for r in rows]
        return found, (FeedPosition(last_id=found[-1].id) if found else position)
    rows = await db.fetchall(
        f"SELECT h.horizon, i.id, i.kind, i.key, i.xid FROM (SELECT {horizon_sql} AS horizon) h"
        " LEFT JOIN invalidations i ON i.xid >= ? ORDER BY i.id", (position.horizon,))
    horizon = int(rows[0][0])
    fresh = [Invalidation(int(r[1]), r[2], r[3]) for r in rows if r[1] is not None and r[1] not in position.seen]
    # Rows of transactions older than the new horizon are never read again, so only the others are kept.
    seen = frozenset(int(r[1]) for r in rows if r[1] is not None and r[4] >= horizon)
    last_id = max([position.last_id, *(r.id for r in fresh)])
    return fresh, FeedPosition(last_id=last_id, horizon=horizon, seen=seen)


async def prune(tx: Tx, before: float) -> None:
    await tx.execute("DELETE FROM invalidations WHERE created_at < ?", (before,))

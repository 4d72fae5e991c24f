"""The domain-event outbox table: record, claim, mark dispatched, prune."""

from __future__ import annotations

import msgspec

from server.ports import Reader, Tx


class StoredEvent(msgspec.Struct, frozen=True):
    id: int
    payload: str
    attempts: int


async def insert(tx: Tx, rows: list[tuple[int, str, bytes]], now: float, claimed_by: str | None,
                 claimed_until: float) -> None:
    """Events as (id, kind, payload), recorded at `now` with the same claim."""
    await tx.executemany(
        "INSERT INTO events (id, kind, payload, created_at, claimed_by, claimed_until) VALUES (?, ?, ?, ?, ?, ?)",
        [(event_id, kind, payload.decode(), now, claimed_by, claimed_until) for event_id, kind, payload in rows])


async def claim_due(tx: Tx, holder: str, now: float, until: float, limit: int) -> list[StoredEvent]:
    """Take undispatched events nobody holds (or whose holder's claim ran out), oldest first."""
    rows = await tx.fetchall(
        "UPDATE events SET claimed_by = ?, claimed_until = ? WHERE id IN ("
        " SELECT id FROM events WHERE dispatched_at IS NULL AND claimed_until < ? ORDER BY id LIMIT ?"
        f"{tx.dialect.skip_locked})"
        " RETURNING id, payload, attempts", (holder, until, now, limit))
    return sorted((StoredEvent(r["id"], r["payload"], r["attempts"]) for r in rows), key=lambda e: e.id)


async def extend_claims(tx: Tx, holder: str, ids: list[int], until: float) -> None:
    await tx.executemany("UPDATE events SET claimed_until = ? WHERE id = ? AND claimed_by = ?",
                         [(until, event_id, holder) for event_id in ids])


async def mark_dispatched(tx: Tx, ids: list[int], now: float) -> None:
    await tx.executemany("UPDATE events SET dispatched_at = ? WHERE id = ?",
                         [(now, event_id) for event_id in ids])


async def mark_failed(tx: Tx, event_id: int, error: str, retry_at: float) -> None:
    """A subscriber failed: release the claim until `retry_at`, when any process may try again."""
    await tx.execute("UPDATE events SET attempts = attempts + 1, last_error = ?, claimed_by = NULL, "
                     "claimed_until = ? WHERE id = ?", (error[:1000], retry_at, event_id))


async def pending_count(db: Reader) -> int:
    return int(await db.fetchval("SELECT count(*) FROM events WHERE dispatched_at IS NULL") or 0)


async def prune_dispatched(tx: Tx, before: float, before_id: int) -> int:
    """Forget events dispatched before `before` (and the activity markers of events older than `before_id`)."""
    await tx.execute("DELETE FROM event_activities WHERE event_id < ?", (before_id,))
    return await tx.execute("DELETE FROM events WHERE dispatched_at IS NOT NULL AND dispatched_at < ?", (before,))

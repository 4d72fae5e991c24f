"""Read-position markers (home, notifications) of each user."""

from __future__ import annotations

from server.domain.records import Marker, columns
from server.ids import now_iso
from server.ports import Reader, Tx

COLS = columns(Marker)


async def get(db: Reader, account_id: int, timelines: list[str]) -> list[Marker]:
    if not timelines:
        return []
    marks = ",".join("?" * len(timelines))
    rows = await db.fetchall(f"SELECT {COLS} FROM markers WHERE account_id = ? AND timeline IN ({marks})",
                             [account_id, *timelines])
    return [Marker(**dict(r)) for r in rows]


async def save(tx: Tx, account_id: int, timeline: str, last_read_id: int) -> None:
    """Set a marker; every change bumps its version (clients use it to detect concurrent readers)."""
    await tx.execute(
        "INSERT INTO markers (account_id, timeline, last_read_id, version, updated_at) VALUES (?, ?, ?, 1, ?)"
        " ON CONFLICT (account_id, timeline) DO UPDATE SET last_read_id = excluded.last_read_id,"
        " version = markers.version + 1, updated_at = excluded.updated_at",
        (account_id, timeline, last_read_id, now_iso()))

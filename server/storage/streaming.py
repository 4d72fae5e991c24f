"""The few reads the streaming layer needs beyond the timeline queries, shaped for caching."""

from __future__ import annotations

from typing import Any

from server.ports import Reader


async def next_mute_expiry(db: Reader, viewer_id: int, now: str) -> str | None:
    """When the viewer's first timed mute ends: a cached hidden-account set is stale from then on."""
    return await db.fetchval("SELECT min(expires_at) FROM mutes WHERE account_id = ? AND expires_at > ?",
                             (viewer_id, now))


async def blocked_domains(db: Reader, viewer_id: int) -> set[str]:
    """Domains the viewer hides: checked per status, so accounts first seen later are hidden too."""
    return {r[0] for r in await db.fetchall("SELECT domain FROM account_domain_blocks WHERE account_id = ?",
                                            (viewer_id,))}


async def interactions(db: Reader, status_ids: list[int]) -> dict[str, set[tuple[int, int]]]:
    """Who favourited, reblogged, bookmarked or pinned these statuses, as (account, status) pairs:
    one query per event instead of one per viewer."""
    out: dict[str, set[tuple[int, int]]] = {"f": set(), "r": set(), "b": set(), "p": set()}
    if not status_ids:
        return out
    marks = ",".join(f"?{i + 1}" for i in range(len(status_ids)))
    rows: list[Any] = await db.fetchall(
        f"SELECT 'f', account_id, status_id FROM favourites WHERE status_id IN ({marks})"
        f" UNION ALL SELECT 'r', account_id, reblog_of_id FROM statuses WHERE reblog_of_id IN ({marks})"
        f"   AND deleted_at IS NULL"
        f" UNION ALL SELECT 'b', account_id, status_id FROM bookmarks WHERE status_id IN ({marks})"
        f" UNION ALL SELECT 'p', account_id, status_id FROM pins WHERE status_id IN ({marks})", status_ids)
    for kind, account_id, status_id in rows:
        out[kind].add((account_id, status_id))
    return out

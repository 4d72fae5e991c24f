"""A viewer's version (`users.viewer_version`, advanced by triggers on every change to what the viewer's
own state adds to a page: schema 0038) and the viewer's flags on statuses, read with it."""

from __future__ import annotations

from server.ports import Reader

FAVOURITED, REBLOGGED, BOOKMARKED, PINNED, REACTED = 1, 2, 4, 8, 16

# A column for a page's query whose parameter ?1 is the viewer: their version, read in the same
# snapshot as the page (an uncorrelated subquery, evaluated once per query).
VERSION_COLUMN = "(SELECT viewer_version FROM users WHERE account_id = ?1)"


async def version(db: Reader, viewer_id: int) -> int:
    return await db.fetchval("SELECT viewer_version FROM users WHERE account_id = ?", (viewer_id,)) or 0


async def flags(db: Reader, viewer_id: int, status_ids: list[int]) -> tuple[int, dict[int, int]]:
    """The viewer's version and, read with it, their flags (FAVOURITED | REBLOGGED | ...) on these
    statuses; statuses without any are absent. One query."""
    marks = ",".join(f"?{i + 2}" for i in range(len(status_ids)))
    rows = await db.fetchall(
        "SELECT 0, viewer_version FROM users WHERE account_id = ?1"
        f" UNION ALL SELECT {FAVOURITED}, status_id FROM favourites WHERE account_id = ?1 AND status_id IN ({marks})"
        f" UNION ALL SELECT {REBLOGGED}, reblog_of_id FROM statuses WHERE account_id = ?1 AND deleted_at IS NULL"
        f"   AND reblog_of_id IN ({marks})"
        f" UNION ALL SELECT {BOOKMARKED}, status_id FROM bookmarks WHERE account_id = ?1 AND status_id IN ({marks})"
        f" UNION ALL SELECT {PINNED}, status_id FROM pins WHERE account_id = ?1 AND status_id IN ({marks})"
        f" UNION ALL SELECT {REACTED}, status_id FROM status_reactions WHERE account_id = ?1"
        f"   AND status_id IN ({marks})",
        [viewer_id, *status_ids])
    current = 0
    out: dict[int, int] = {}
    for bit, value in rows:
        if bit == 0:
            current = value
        else:
            out[value] = out.get(value, 0) | bit
    return current, out


async def every_flag(db: Reader, viewer_id: int, limit: int) -> dict[int, int] | None:
    """All the viewer's flags (status id → FAVOURITED | REBLOGGED | ...), or None when there are more
    than `limit` of them (a row per flag, a reaction per emoji). Each part reads an index of the
    viewer's own rows."""
    rows = await db.fetchall(
        f"SELECT {FAVOURITED}, status_id FROM favourites WHERE account_id = ?1"
        f" UNION ALL SELECT {REBLOGGED}, reblog_of_id FROM statuses WHERE account_id = ?1 AND deleted_at IS NULL"
        "   AND reblog_of_id IS NOT NULL"
        f" UNION ALL SELECT {BOOKMARKED}, status_id FROM bookmarks WHERE account_id = ?1"
        f" UNION ALL SELECT {PINNED}, status_id FROM pins WHERE account_id = ?1"
        f" UNION ALL SELECT {REACTED}, status_id FROM status_reactions WHERE account_id = ?1"
        " LIMIT ?2",
        [viewer_id, limit + 1])
    if len(rows) > limit:
        return None
    out: dict[int, int] = {}
    for bit, status_id in rows:
        out[status_id] = out.get(status_id, 0) | bit
    return out

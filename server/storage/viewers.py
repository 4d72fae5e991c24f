"""A viewer's version (`users.viewer_version`, advanced by triggers on every change to what the viewer's
own state adds to a page: schema 0038) and the viewer's flags on statuses, read with it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from server.ports import Reader, Row

FAVOURITED, REBLOGGED, BOOKMARKED, PINNED, REACTED = 1, 2, 4, 8, 16

# A column for a page's query whose parameter ?1 is the viewer: their version, read in the same
# snapshot as the page (an uncorrelated subquery, evaluated once per query).
VERSION_COLUMN = "(SELECT viewer_version FROM users WHERE account_id = ?1)"


def version_column(viewer_id: int | None, params: list[Any]) -> tuple[str, list[Any]]:
    """What a page's query adds to its select list to read `viewer_id`'s version (nothing without a
    viewer), and its parameters with the viewer's first: the column must come before every other
    placeholder in the query's text, so that ?1 is the viewer."""
    if viewer_id is None:
        return "", params
    return f", {VERSION_COLUMN}", [viewer_id, *params]


def ids_and_version(rows: Sequence[Row], viewer_id: int | None) -> tuple[list[int], int | None]:
    """A page's ids (the first column) and the version `version_column` read with them: None without
    a viewer, or when the page is empty."""
    return [r[0] for r in rows], (rows[0][1] if rows and viewer_id is not None else None)


async def version(db: Reader, viewer_id: int) -> int:
    return await db.fetchval("SELECT viewer_version FROM users WHERE account_id = ?", (viewer_id,)) or 0


# Where each flag is: its bit, the column naming the status, and the viewer's rows (?1: the viewer).
_FLAG_SOURCES = (
    (FAVOURITED, "status_id", "favourites WHERE account_id = ?1"),
    (REBLOGGED, "reblog_of_id", "statuses WHERE account_id = ?1 AND deleted_at IS NULL AND reblog_of_id IS NOT NULL"),
    (BOOKMARKED, "status_id", "bookmarks WHERE account_id = ?1"),
    (PINNED, "status_id", "pins WHERE account_id = ?1"),
    (REACTED, "status_id", "status_reactions WHERE account_id = ?1"),
)


def _flags_sql(among: str = "") -> str:
    """The viewer's flags as (bit, status id) rows, on the statuses listed in `among` if given. Each part
    reads an index of the viewer's own rows."""
    return " UNION ALL ".join(f"SELECT {bit}, {column} FROM {rows}" + (f" AND {column} IN ({among})" if among else "")
                              for bit, column, rows in _FLAG_SOURCES)


def _by_status(rows: Iterable[Row]) -> dict[int, int]:
    """(bit, status id) rows → status id → its bits."""
    out: dict[int, int] = {}
    for bit, status_id in rows:
        out[status_id] = out.get(status_id, 0) | bit
    return out


async def flags(db: Reader, viewer_id: int, status_ids: list[int]) -> tuple[int, dict[int, int]]:
    """The viewer's version and, read with it, their flags (FAVOURITED | REBLOGGED | ...) on these
    statuses; statuses without any are absent. One query."""
    marks = ",".join(f"?{i + 2}" for i in range(len(status_ids)))
    rows = await db.fetchall(f"SELECT 0, viewer_version FROM users WHERE account_id = ?1 UNION ALL {_flags_sql(marks)}",
                             [viewer_id, *status_ids])
    current = next((value for bit, value in rows if bit == 0), 0)
    return current, _by_status(r for r in rows if r[0] != 0)


async def every_flag(db: Reader, viewer_id: int, limit: int) -> dict[int, int] | None:
    """All the viewer's flags (status id → FAVOURITED | REBLOGGED | ...), or None when there are more
    than `limit` of them (a row per flag, a reaction per emoji)."""
    rows = await db.fetchall(f"{_flags_sql()} LIMIT ?2", [viewer_id, limit + 1])
    return None if len(rows) > limit else _by_status(rows)

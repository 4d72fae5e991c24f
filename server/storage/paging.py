"""Id-window pagination shared by every list query: max_id/since_id/min_id, newest first."""

from __future__ import annotations

from typing import Any

from server.domain.paging import Page

__all__ = ["Page", "newest_first", "window"]


def window(column: str, page: Page) -> tuple[str, list[Any], str]:
    """SQL conditions, their parameters and the ORDER BY for a page.

    With min_id the rows nearest to it are wanted, so the query walks upward; callers then reverse
    (see newest_first) because clients expect newest first whatever the parameters.
    """
    conds, params = [], []
    if page.max_id is not None:
        conds.append(f"{column} < ?")
        params.append(page.max_id)
    if page.since_id is not None:
        conds.append(f"{column} > ?")
        params.append(page.since_id)
    if page.min_id is not None:
        conds.append(f"{column} > ?")
        params.append(page.min_id)
    order = f"{column} ASC" if page.min_id is not None else f"{column} DESC"
    return (" AND " + " AND ".join(conds)) if conds else "", params, order


def newest_first(rows: list[Any], page: Page, key: Any = lambda r: r[0]) -> list[Any]:
    return sorted(rows, key=key, reverse=True) if page.min_id is not None else rows

"""Counts behind trending tags, links and posts, read from the statuses of a recent window, and the
admin reviews that hide an item (the trend_reviews table).

Only public, original (not boosted), undeleted posts of listed (discoverable), unsilenced and
unsuspended accounts count; local-only posts only when `local_only` is asked for (a signed-in
viewer of this instance). Status ids are time-ordered, so the window is an id range."""

from __future__ import annotations

from collections.abc import Iterable

from server.ids import now_iso
from server.ports import Reader, Row, Tx

_COUNTED = ("s.visibility = 'public' AND s.reblog_of_id IS NULL AND s.deleted_at IS NULL AND s.id >= ?"
            " AND a.suspended = 0 AND a.discoverable = 1"
            " AND NOT EXISTS (SELECT 1 FROM account_moderation am WHERE am.account_id = s.account_id"
            "   AND am.silenced_at IS NOT NULL)")


def _counted(local_only: bool) -> str:
    return _COUNTED + ("" if local_only else " AND s.local_only = 0")


async def tag_window(db: Reader, since_id: int, local_only: bool, min_accounts: int, limit: int) -> list[Row]:
    """(tag id, name, uses, distinct accounts) of tags used by at least `min_accounts` accounts since the
    id, the most widely used first."""
    return await db.fetchall(
        "SELECT t.id, t.name, count(*) AS uses, count(DISTINCT s.account_id) AS people"
        " FROM status_tags st JOIN statuses s ON s.id = st.status_id JOIN tags t ON t.id = st.tag_id"
        f" JOIN accounts a ON a.id = s.account_id WHERE {_counted(local_only)}"
        " GROUP BY t.id, t.name HAVING count(DISTINCT s.account_id) >= ?"
        " ORDER BY people DESC, uses DESC, t.id DESC LIMIT ?", (since_id, min_accounts, limit))


async def tag_history(db: Reader, since_id: int, local_only: bool, tag_ids: list[int]) -> list[Row]:
    """(tag id, day, uses, distinct accounts) per tag and day (YYYY-MM-DD of created_at) since the id."""
    if not tag_ids:
        return []
    return await db.fetchall(
        "SELECT st.tag_id, substr(s.created_at, 1, 10), count(*), count(DISTINCT s.account_id)"
        " FROM status_tags st JOIN statuses s ON s.id = st.status_id JOIN accounts a ON a.id = s.account_id"
        f" WHERE {_counted(local_only)} AND st.tag_id IN ({','.join('?' * len(tag_ids))})"
        " GROUP BY st.tag_id, substr(s.created_at, 1, 10)", (since_id, *tag_ids))


async def linking_posts(db: Reader, since_id: int, local_only: bool, limit: int) -> list[Row]:
    """(status id, account id, day, content) of the newest counted posts that hold a link."""
    return await db.fetchall(
        "SELECT s.id, s.account_id, substr(s.created_at, 1, 10), s.content FROM statuses s"
        f" JOIN accounts a ON a.id = s.account_id WHERE {_counted(local_only)} AND s.content LIKE '%href=%'"
        " ORDER BY s.id DESC LIMIT ?", (since_id, limit))


async def status_engagement(db: Reader, since_id: int, local_only: bool, min_accounts: int,
                            limit: int) -> list[tuple[int, int]]:
    """(status id, accounts that favourited, boosted or reacted) for counted posts since the id with at
    least `min_accounts` of them (the author's own aside), the most engaged first, newest on a tie."""
    engaged = ("(SELECT count(*) FROM (SELECT f.account_id FROM favourites f WHERE f.status_id = s.id"
               " UNION SELECT b.account_id FROM statuses b WHERE b.reblog_of_id = s.id AND b.deleted_at IS NULL"
               " UNION SELECT r.account_id FROM status_reactions r WHERE r.status_id = s.id) e"
               " WHERE e.account_id <> s.account_id)")
    rows = await db.fetchall(
        f"SELECT id, engaged FROM (SELECT s.id, {engaged} AS engaged FROM statuses s"
        f" JOIN accounts a ON a.id = s.account_id WHERE {_counted(local_only)}"
        "   AND (s.favourites_count > 0 OR s.reblogs_count > 0"
        "     OR EXISTS (SELECT 1 FROM status_reactions r WHERE r.status_id = s.id))) c"
        " WHERE engaged >= ? ORDER BY engaged DESC, id DESC LIMIT ?", (since_id, min_accounts, limit))
    return [(r[0], r[1]) for r in rows]


async def rejected(db: Reader, kind: str) -> set[str]:
    rows = await db.fetchall("SELECT item FROM trend_reviews WHERE kind = ? AND state = 'rejected'", (kind,))
    return {r[0] for r in rows}


async def reviews(db: Reader, kind: str, items: Iterable[str]) -> dict[str, str]:
    items = list(items)
    if not items:
        return {}
    rows = await db.fetchall(
        f"SELECT item, state FROM trend_reviews WHERE kind = ? AND item IN ({','.join('?' * len(items))})",
        (kind, *items))
    return {r[0]: r[1] for r in rows}


async def review(tx: Tx, kind: str, item: str, state: str, reviewer_id: int | None) -> None:
    await tx.execute(
        "INSERT INTO trend_reviews (kind, item, state, reviewer_id, reviewed_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (kind, item) DO UPDATE SET state = excluded.state, reviewer_id = excluded.reviewer_id,"
        " reviewed_at = excluded.reviewed_at", (kind, item, state, reviewer_id, now_iso()))


async def tag_exists(db: Reader, tag_id: int) -> bool:
    return await db.fetchval("SELECT 1 FROM tags WHERE id = ?", (tag_id,)) is not None



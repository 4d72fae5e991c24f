"""Followed hashtags, and the numbers behind a Tag entity."""

from __future__ import annotations

from collections.abc import Iterable

from server.ids import new_id, now_iso
from server.ports import Reader, Tx
from server.storage.dialect import marks
from server.storage.paging import Page, newest_first, window


async def tag_by_name(db: Reader, name: str) -> tuple[int, str] | None:
    row = await db.fetchone("SELECT id, name FROM tags WHERE lower(name) = lower(?)", (name,))
    return None if row is None else (row[0], row[1])


async def ensure_tag(tx: Tx, name: str) -> tuple[int, str]:
    await tx.execute("INSERT INTO tags (id, name) VALUES (?, ?) ON CONFLICT DO NOTHING", (new_id(), name))
    row = await tx.fetchone("SELECT id, name FROM tags WHERE lower(name) = lower(?)", (name,))
    assert row is not None  # inserted above, or there already
    return row[0], row[1]


async def follow(tx: Tx, account_id: int, tag_id: int) -> None:
    await tx.execute("INSERT INTO tag_follows (id, account_id, tag_id, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                     (new_id(), account_id, tag_id, now_iso()))


async def unfollow(tx: Tx, account_id: int, tag_id: int) -> None:
    await tx.execute("DELETE FROM tag_follows WHERE account_id = ? AND tag_id = ?", (account_id, tag_id))


async def following(db: Reader, account_id: int, tag_ids: Iterable[int]) -> set[int]:
    ids = list(tag_ids)
    if not ids:
        return set()
    rows = await db.fetchall(
        f"SELECT tag_id FROM tag_follows WHERE account_id = ? AND tag_id IN ({','.join('?' * len(ids))})",
        [account_id, *ids])
    return {r[0] for r in rows}


async def followed_page(db: Reader, account_id: int, page: Page) -> list[tuple[int, int, str]]:
    """(follow row id, tag id, tag name), newest follow first."""
    cond, params, order = window("tf.id", page)
    rows = await db.fetchall(
        "SELECT tf.id, t.id, t.name FROM tag_follows tf JOIN tags t ON t.id = tf.tag_id"
        f" WHERE tf.account_id = ?{cond} ORDER BY {order} LIMIT ?", [account_id, *params, page.limit])
    return [(r[0], r[1], r[2]) for r in newest_first(rows, page)]


async def local_followers_of_tags(db: Reader, status_ids: list[int]) -> dict[int, set[int]]:
    """status id → the local accounts following any of its hashtags (statuses with none left out)."""
    out: dict[int, set[int]] = {}
    for status_id, account_id in await db.fetchall(
            "SELECT DISTINCT st.status_id, tf.account_id FROM status_tags st JOIN tag_follows tf ON tf.tag_id = st.tag_id"
            f" JOIN accounts a ON a.id = tf.account_id AND a.domain = '' WHERE st.status_id IN ({marks(len(status_ids))})",
            status_ids):
        out.setdefault(status_id, set()).add(account_id)
    return out


async def history(db: Reader, tag_ids: list[int], since_id: int) -> dict[int, list[tuple[str, int, int]]]:
    """Per tag: (UTC day, posts, distinct authors) for days with use since the id (the id encodes time)."""
    out: dict[int, list[tuple[str, int, int]]] = {t: [] for t in tag_ids}
    if not tag_ids:
        return out
    rows = await db.fetchall(
        "SELECT st.tag_id, substr(s.created_at, 1, 10) AS day, count(*), count(DISTINCT s.account_id)"
        " FROM status_tags st JOIN statuses s ON s.id = st.status_id"
        f" WHERE st.tag_id IN ({','.join('?' * len(tag_ids))}) AND st.status_id >= ? AND s.deleted_at IS NULL"
        " GROUP BY st.tag_id, day", [*tag_ids, since_id])
    for r in rows:
        out[r[0]].append((r[1], r[2], r[3]))
    return out

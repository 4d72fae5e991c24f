"""Filters (v2): the filter, its keywords and the statuses it names. v1 filters are keywords."""

from __future__ import annotations

from collections.abc import Iterable

from server.domain.records import Filter, FilterKeyword, FilterStatus, columns
from server.ids import new_id, now_iso
from server.ports import Reader, Tx
from server.storage.dialect import marks

COLS = columns(Filter)
KEYWORD_COLS = columns(FilterKeyword)
STATUS_COLS = columns(FilterStatus)


async def insert(tx: Tx, account_id: int, title: str, context: str, action: str, expires_at: str | None) -> Filter:
    now = now_iso()
    f = Filter(id=new_id(), account_id=account_id, title=title, context=context, action=action,
               expires_at=expires_at, created_at=now, updated_at=now)
    await tx.execute(f"INSERT INTO filters ({COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     (f.id, f.account_id, f.title, f.context, f.action, f.expires_at, f.created_at, f.updated_at))
    return f


async def update(tx: Tx, filter_id: int, *, title: str, context: str, action: str, expires_at: str | None) -> None:
    await tx.execute("UPDATE filters SET title = ?, context = ?, action = ?, expires_at = ?, updated_at = ? WHERE id = ?",
                     (title, context, action, expires_at, now_iso(), filter_id))


async def delete(tx: Tx, filter_id: int) -> None:
    await tx.execute("DELETE FROM filters WHERE id = ?", (filter_id,))


async def get(db: Reader, account_id: int, filter_id: int) -> Filter | None:
    row = await db.fetchone(f"SELECT {COLS} FROM filters WHERE id = ? AND account_id = ?", (filter_id, account_id))
    return None if row is None else Filter(**dict(row))


async def owned(db: Reader, account_id: int) -> list[Filter]:
    rows = await db.fetchall(f"SELECT {COLS} FROM filters WHERE account_id = ? ORDER BY id", (account_id,))
    return [Filter(**dict(r)) for r in rows]


async def active(db: Reader, account_id: int, now: str) -> list[Filter]:
    rows = await db.fetchall(
        f"SELECT {COLS} FROM filters WHERE account_id = ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY id",
        (account_id, now))
    return [Filter(**dict(r)) for r in rows]


# -- keywords ------------------------------------------------------------------------------------

async def insert_keyword(tx: Tx, filter_id: int, keyword: str, whole_word: bool) -> FilterKeyword:
    k = FilterKeyword(id=new_id(), filter_id=filter_id, keyword=keyword, whole_word=whole_word, created_at=now_iso())
    await tx.execute(f"INSERT INTO filter_keywords ({KEYWORD_COLS}) VALUES (?, ?, ?, ?, ?)",
                     (k.id, k.filter_id, k.keyword, int(k.whole_word), k.created_at))
    return k


async def update_keyword(tx: Tx, keyword_id: int, keyword: str, whole_word: bool) -> None:
    await tx.execute("UPDATE filter_keywords SET keyword = ?, whole_word = ? WHERE id = ?",
                     (keyword, int(whole_word), keyword_id))


async def delete_keyword(tx: Tx, keyword_id: int) -> None:
    await tx.execute("DELETE FROM filter_keywords WHERE id = ?", (keyword_id,))


async def keyword(db: Reader, account_id: int, keyword_id: int) -> FilterKeyword | None:
    row = await db.fetchone(
        f"SELECT {columns(FilterKeyword, 'k')} FROM filter_keywords k JOIN filters f ON f.id = k.filter_id"
        " WHERE k.id = ? AND f.account_id = ?", (keyword_id, account_id))
    return None if row is None else FilterKeyword(**dict(row))


async def keywords_for(db: Reader, filter_ids: Iterable[int]) -> dict[int, list[FilterKeyword]]:
    ids = list(filter_ids)
    out: dict[int, list[FilterKeyword]] = {i: [] for i in ids}
    if ids:
        rows = await db.fetchall(
            f"SELECT {KEYWORD_COLS} FROM filter_keywords WHERE filter_id IN ({marks(len(ids))}) ORDER BY id", ids)
        for r in rows:
            out[r["filter_id"]].append(FilterKeyword(**dict(r)))
    return out


async def keywords_of_account(db: Reader, account_id: int) -> list[FilterKeyword]:
    rows = await db.fetchall(
        f"SELECT {columns(FilterKeyword, 'k')} FROM filter_keywords k JOIN filters f ON f.id = k.filter_id"
        " WHERE f.account_id = ? ORDER BY k.id", (account_id,))
    return [FilterKeyword(**dict(r)) for r in rows]


async def count_keywords(db: Reader, filter_id: int) -> int:
    return await db.fetchval("SELECT count(*) FROM filter_keywords WHERE filter_id = ?", (filter_id,)) or 0


# -- statuses ------------------------------------------------------------------------------------

async def insert_status(tx: Tx, filter_id: int, status_id: int) -> FilterStatus | None:
    """None when the filter already names the status."""
    s = FilterStatus(id=new_id(), filter_id=filter_id, status_id=status_id, created_at=now_iso())
    changed = await tx.execute(f"INSERT INTO filter_statuses ({STATUS_COLS}) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                               (s.id, s.filter_id, s.status_id, s.created_at))
    return s if changed else None


async def delete_status(tx: Tx, filter_status_id: int) -> None:
    await tx.execute("DELETE FROM filter_statuses WHERE id = ?", (filter_status_id,))


async def filter_status(db: Reader, account_id: int, filter_status_id: int) -> FilterStatus | None:
    row = await db.fetchone(
        f"SELECT {columns(FilterStatus, 's')} FROM filter_statuses s JOIN filters f ON f.id = s.filter_id"
        " WHERE s.id = ? AND f.account_id = ?", (filter_status_id, account_id))
    return None if row is None else FilterStatus(**dict(row))


async def statuses_for(db: Reader, filter_ids: Iterable[int]) -> dict[int, list[FilterStatus]]:
    ids = list(filter_ids)
    out: dict[int, list[FilterStatus]] = {i: [] for i in ids}
    if ids:
        rows = await db.fetchall(
            f"SELECT {STATUS_COLS} FROM filter_statuses WHERE filter_id IN ({marks(len(ids))}) ORDER BY id", ids)
        for r in rows:
            out[r["filter_id"]].append(FilterStatus(**dict(r)))
    return out

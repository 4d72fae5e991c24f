"""Lists, their members and the materialised list feed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from server.domain.records import UserList, columns
from server.ids import new_id, now_iso
from server.ports import Reader, Tx
from server.storage.dialect import marks
from server.storage.paging import Page, newest_first, window
from server.storage.timelines import _not_hidden

COLS = columns(UserList)


def _list(row: Any) -> UserList | None:
    return None if row is None else UserList(**dict(row))


async def insert(tx: Tx, account_id: int, title: str, replies_policy: str, exclusive: bool) -> UserList:
    item = UserList(id=new_id(), account_id=account_id, title=title, replies_policy=replies_policy,
                    exclusive=exclusive, created_at=now_iso())
    await tx.execute(f"INSERT INTO lists ({COLS}) VALUES (?, ?, ?, ?, ?, ?)",
                     (item.id, item.account_id, item.title, item.replies_policy, int(item.exclusive), item.created_at))
    return item


async def update(tx: Tx, list_id: int, title: str, replies_policy: str, exclusive: bool) -> None:
    await tx.execute("UPDATE lists SET title = ?, replies_policy = ?, exclusive = ? WHERE id = ?",
                     (title, replies_policy, int(exclusive), list_id))


async def delete(tx: Tx, list_id: int) -> None:
    await tx.execute("DELETE FROM lists WHERE id = ?", (list_id,))


async def get(db: Reader, list_id: int) -> UserList | None:
    return _list(await db.fetchone(f"SELECT {COLS} FROM lists WHERE id = ?", (list_id,)))


async def owned(db: Reader, account_id: int) -> list[UserList]:
    rows = await db.fetchall(f"SELECT {COLS} FROM lists WHERE account_id = ? ORDER BY lower(title), id",
                             (account_id,))
    return [UserList(**dict(r)) for r in rows]


async def owned_containing(db: Reader, owner_id: int, member_id: int) -> list[UserList]:
    rows = await db.fetchall(
        f"SELECT {columns(UserList, 'l')} FROM lists l JOIN list_accounts la ON la.list_id = l.id"
        " WHERE l.account_id = ? AND la.account_id = ? ORDER BY lower(l.title), l.id", (owner_id, member_id))
    return [UserList(**dict(r)) for r in rows]


async def containing(db: Reader, member_id: int) -> list[UserList]:
    """Every list (of any owner) the account is a member of: the fan-out's delivery targets."""
    rows = await db.fetchall(
        f"SELECT {columns(UserList, 'l')} FROM lists l JOIN list_accounts la ON la.list_id = l.id"
        " WHERE la.account_id = ?", (member_id,))
    return [UserList(**dict(r)) for r in rows]


async def member_ids(db: Reader, list_id: int) -> set[int]:
    return {r[0] for r in await db.fetchall("SELECT account_id FROM list_accounts WHERE list_id = ?", (list_id,))}


async def members_page(db: Reader, list_id: int, page: Page | None) -> list[tuple[int, int]]:
    """(membership row id, account id), newest first; all of them when page is None."""
    if page is None:
        rows = await db.fetchall(
            "SELECT la.id, la.account_id FROM list_accounts la JOIN accounts a ON a.id = la.account_id"
            " WHERE la.list_id = ? AND a.suspended = 0 ORDER BY la.id DESC", (list_id,))
        return [(r[0], r[1]) for r in rows]
    cond, params, order = window("la.id", page)
    rows = await db.fetchall(
        "SELECT la.id, la.account_id FROM list_accounts la JOIN accounts a ON a.id = la.account_id"
        f" WHERE la.list_id = ? AND a.suspended = 0{cond} ORDER BY {order} LIMIT ?",
        [list_id, *params, page.limit])
    return [(r[0], r[1]) for r in newest_first(rows, page)]


async def add_members(tx: Tx, list_id: int, account_ids: Iterable[int]) -> list[int]:
    """Add accounts; returns those that were not members yet."""
    added = []
    for account_id in account_ids:
        changed = await tx.execute(
            "INSERT INTO list_accounts (id, list_id, account_id, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (new_id(), list_id, account_id, now_iso()))
        if changed:
            added.append(account_id)
    return added


async def remove_members(tx: Tx, list_id: int, account_ids: list[int]) -> None:
    if not account_ids:
        return
    members = marks(len(account_ids))
    await tx.execute(f"DELETE FROM list_accounts WHERE list_id = ? AND account_id IN ({members})", [list_id, *account_ids])
    await tx.execute(
        f"DELETE FROM list_feed WHERE list_id = ? AND status_id IN (SELECT id FROM statuses WHERE account_id IN ({members}))",
        [list_id, *account_ids])


async def exclusive_owner_ids(db: Reader, member_id: int) -> set[int]:
    """Owners who keep this account's posts out of their home feed (an exclusive list holds it)."""
    rows = await db.fetchall(
        "SELECT DISTINCT l.account_id FROM lists l JOIN list_accounts la ON la.list_id = l.id"
        " WHERE la.account_id = ? AND l.exclusive = 1", (member_id,))
    return {r[0] for r in rows}


async def add_to_feeds(tx: Tx, status_id: int, list_ids: Iterable[int]) -> None:
    await tx.executemany("INSERT INTO list_feed (list_id, status_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                         [(i, status_id) for i in list_ids])


async def lists_holding(db: Reader, status_id: int) -> list[int]:
    return [r[0] for r in await db.fetchall("SELECT list_id FROM list_feed WHERE status_id = ?", (status_id,))]


async def backfill(tx: Tx, list_id: int, owner_id: int, member_id: int, limit: int = 40) -> None:
    """Bring a new member's recent posts into the list, with the replies a list never shows left out."""
    await tx.execute(
        "INSERT INTO list_feed (list_id, status_id) SELECT CAST(? AS BIGINT), id FROM statuses"
        " WHERE account_id = ? AND deleted_at IS NULL AND visibility IN ('public', 'unlisted', 'private')"
        " AND (in_reply_to_id IS NULL OR in_reply_to_account_id IN (account_id, ?))"
        " ORDER BY id DESC LIMIT ? ON CONFLICT DO NOTHING", (list_id, member_id, owner_id, limit))


async def timeline(db: Reader, list_id: int, page: Page, hidden: set[int]) -> list[int]:
    cond, params, order = window("lf.status_id", page)
    params = [list_id, *params]
    hidden_sql = _not_hidden(hidden, params)
    params.append(page.limit)
    rows = await db.fetchall(
        "SELECT lf.status_id FROM list_feed lf JOIN statuses s ON s.id = lf.status_id"
        f" WHERE lf.list_id = ? AND s.deleted_at IS NULL{cond}{hidden_sql} ORDER BY {order} LIMIT ?", params)
    return [r[0] for r in newest_first(rows, page)]

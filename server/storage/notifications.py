"""Notifications."""

from __future__ import annotations

from typing import Any

from server.domain.records import Notification, columns
from server.ids import new_id, now_iso
from server.ports import Reader, Tx
from server.storage.dialect import marks
from server.storage.paging import Page, newest_first, window

COLS = columns(Notification)


async def insert(tx: Tx, event_id: int, account_id: int, from_account_id: int, type_: str,
                 status_id: int | None) -> Notification | None:
    """The notification, or None if this event already gave this account one (a repeated dispatch)."""
    n = Notification(id=new_id(), account_id=account_id, from_account_id=from_account_id, type=type_,
                     status_id=status_id, created_at=now_iso())
    added = await tx.execute(
        f"INSERT INTO notifications ({COLS}, event_id) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (n.id, n.account_id, n.from_account_id, n.type, n.status_id, n.created_at, event_id))
    return n if added else None


async def by_events(db: Reader, event_ids: list[int]) -> list[Notification]:
    """The notifications these events made, oldest first."""
    rows = await db.fetchall(
        f"SELECT {COLS} FROM notifications WHERE event_id IN ({marks(len(event_ids))}) ORDER BY id", event_ids)
    return [Notification(*r) for r in rows]


async def delete_matching(tx: Tx, from_account_id: int, type_: str, status_id: int | None = None,
                          account_id: int | None = None) -> None:
    sql = "DELETE FROM notifications WHERE from_account_id = ? AND type = ?"
    params: list[Any] = [from_account_id, type_]
    if status_id is not None:
        sql += " AND status_id = ?"
        params.append(status_id)
    if account_id is not None:
        sql += " AND account_id = ?"
        params.append(account_id)
    await tx.execute(sql, params)


async def list_for(db: Reader, account_id: int, page: Page, types: list[str] | None,
                   exclude_types: list[str] | None, from_account_id: int | None,
                   hidden: set[int]) -> list[Notification]:
    cond, params, order = window("n.id", page)
    where = "n.account_id = ?"
    pre: list[Any] = [account_id]
    if types:
        where += f" AND n.type IN ({','.join('?' * len(types))})"
        pre.extend(types)
    if exclude_types:
        where += f" AND n.type NOT IN ({','.join('?' * len(exclude_types))})"
        pre.extend(exclude_types)
    if from_account_id is not None:
        where += " AND n.from_account_id = ?"
        pre.append(from_account_id)
    if hidden:
        where += f" AND n.from_account_id NOT IN ({','.join('?' * len(hidden))})"
        pre.extend(hidden)
    where += " AND (n.status_id IS NULL OR EXISTS (SELECT 1 FROM statuses s WHERE s.id = n.status_id AND s.deleted_at IS NULL))"
    rows = await db.fetchall(
        f"SELECT {', '.join('n.' + c for c in Notification.__struct_fields__)} FROM notifications n"
        f" WHERE {where}{cond} ORDER BY {order} LIMIT ?", [*pre, *params, page.limit])
    return [Notification(*r) for r in newest_first(rows, page, key=lambda r: r["id"])]


async def get(db: Reader, account_id: int, notification_id: int) -> Notification | None:
    row = await db.fetchone(f"SELECT {COLS} FROM notifications WHERE id = ? AND account_id = ?",
                            (notification_id, account_id))
    return None if row is None else Notification(*row)


async def clear(tx: Tx, account_id: int) -> None:
    await tx.execute("DELETE FROM notifications WHERE account_id = ?", (account_id,))


async def dismiss(tx: Tx, account_id: int, notification_id: int) -> bool:
    return bool(await tx.execute("DELETE FROM notifications WHERE id = ? AND account_id = ?",
                                 (notification_id, account_id)))


async def delete_from(tx: Tx, recipient_id: int, from_account_id: int) -> None:
    """Everything one account caused in another's notifications (when it is blocked)."""
    await tx.execute("DELETE FROM notifications WHERE account_id = ? AND from_account_id = ?",
                     (recipient_id, from_account_id))


async def delete_for_status(tx: Tx, status_id: int) -> None:
    await tx.execute("DELETE FROM notifications WHERE status_id = ?", (status_id,))

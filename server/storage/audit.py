"""The audit log: append-only (the database refuses UPDATE, and DELETE of rows younger than a day)."""

from __future__ import annotations

from typing import Any

from server.domain.identity import AuditEntry
from server.ids import new_id
from server.ports import Reader, Tx

_COLS = "id, at, actor_id, actor, action, target_type, target_id, target, address, outcome, detail"


async def insert(tx: Tx, entry: AuditEntry) -> int:
    entry.id = entry.id or new_id()
    await tx.execute(
        f"INSERT INTO audit_log ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (entry.id, entry.at, entry.actor_id, entry.actor, entry.action, entry.target_type, entry.target_id,
         entry.target, entry.address, entry.outcome, entry.detail))
    return entry.id


async def read(db: Reader, *, actor: str | None = None, action: str | None = None, since: str | None = None,
               after_id: int = 0, before_id: int | None = None, limit: int = 100,
               newest_first: bool = False) -> list[AuditEntry]:
    """Entries matching the filters; `action` matches a whole action or a prefix ending in a dot
    ("account." matches account.suspend and account.delete)."""
    where: list[str] = ["id > ?"]
    args: list[Any] = [after_id]
    if before_id is not None:
        where.append("id < ?")
        args.append(before_id)
    if actor:
        where.append("actor = ?")
        args.append(actor)
    if action:
        if action.endswith("."):
            where.append("substr(action, 1, ?) = ?")
            args.extend([len(action), action])
        else:
            where.append("action = ?")
            args.append(action)
    if since:
        where.append("at >= ?")
        args.append(since)
    order = "DESC" if newest_first else "ASC"
    rows = await db.fetchall(f"SELECT {_COLS} FROM audit_log WHERE {' AND '.join(where)} ORDER BY id {order} LIMIT ?",
                             [*args, limit])
    return [AuditEntry(**dict(r)) for r in rows]


async def prune(tx: Tx, before: str) -> int:
    return await tx.execute("DELETE FROM audit_log WHERE at < ?", (before,))


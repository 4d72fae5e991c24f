"""What moderators work with: the reports queue (assignment and resolution)."""

from __future__ import annotations

from server.ids import now_iso
from server.ports import Reader, Tx


async def report_ids(db: Reader, *, resolved: bool | None, account_id: int | None, target_account_id: int | None,
                     max_id: int | None, since_id: int | None, min_id: int | None, limit: int) -> list[int]:
    where: list[str] = ["TRUE"]
    args: list[object] = []
    if resolved is not None:
        where.append("action_taken_at IS NOT NULL" if resolved else "action_taken_at IS NULL")
    if account_id is not None:
        where.append("account_id = ?")
        args.append(account_id)
    if target_account_id is not None:
        where.append("target_account_id = ?")
        args.append(target_account_id)
    order = "DESC"
    for bound, op in ((max_id, "<"), (since_id, ">"), (min_id, ">")):
        if bound is not None:
            where.append(f"id {op} ?")
            args.append(bound)
    if min_id is not None:
        order = "ASC"
    rows = await db.fetchall(f"SELECT id FROM reports WHERE {' AND '.join(where)} ORDER BY id {order} LIMIT ?",
                             [*args, limit])
    return sorted((r[0] for r in rows), reverse=True)


async def handlers(db: Reader, report_ids: list[int]) -> dict[int, tuple[int | None, int | None]]:
    """report id → (assigned account, account that resolved it)."""
    if not report_ids:
        return {}
    rows = await db.fetchall("SELECT id, assigned_account_id, action_taken_by_account_id FROM reports"
                             f" WHERE id IN ({','.join('?' * len(report_ids))})", report_ids)
    return {r[0]: (r[1], r[2]) for r in rows}


async def assign(tx: Tx, report_id: int, account_id: int | None) -> None:
    await tx.execute("UPDATE reports SET assigned_account_id = ?, updated_at = ? WHERE id = ?",
                     (account_id, now_iso(), report_id))


async def resolve(tx: Tx, report_id: int, by_account_id: int | None) -> None:
    now = now_iso()
    await tx.execute("UPDATE reports SET action_taken_at = ?, action_taken_by_account_id = ?, updated_at = ?"
                     " WHERE id = ?", (now, by_account_id, now, report_id))


async def reopen(tx: Tx, report_id: int) -> None:
    await tx.execute("UPDATE reports SET action_taken_at = NULL, action_taken_by_account_id = NULL, updated_at = ?"
                     " WHERE id = ?", (now_iso(), report_id))

"""Domains individual users have blocked for themselves."""

from __future__ import annotations

from server.ids import new_id, now_iso
from server.ports import Reader, Tx
from server.storage.paging import Page, newest_first, window


async def add(tx: Tx, account_id: int, domain: str) -> bool:
    return bool(await tx.execute(
        "INSERT INTO account_domain_blocks (id, account_id, domain, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (new_id(), account_id, domain, now_iso())))


async def remove(tx: Tx, account_id: int, domain: str) -> bool:
    return bool(await tx.execute("DELETE FROM account_domain_blocks WHERE account_id = ? AND domain = ?",
                                 (account_id, domain)))


async def page_for(db: Reader, account_id: int, page: Page) -> list[tuple[int, str]]:
    """(row id, domain), newest first."""
    cond, params, order = window("id", page)
    rows = await db.fetchall(
        f"SELECT id, domain FROM account_domain_blocks WHERE account_id = ?{cond} ORDER BY {order} LIMIT ?",
        [account_id, *params, page.limit])
    return [(r[0], r[1]) for r in newest_first(rows, page)]


async def follower_ids_from(db: Reader, account_id: int, domain: str) -> list[int]:
    """The account's followers (and pending follow requesters) on a domain."""
    rows = await db.fetchall(
        "SELECT f.account_id FROM follows f JOIN accounts a ON a.id = f.account_id"
        " WHERE f.target_account_id = ?1 AND a.domain = ?2"
        " UNION SELECT r.account_id FROM follow_requests r JOIN accounts a ON a.id = r.account_id"
        " WHERE r.target_account_id = ?1 AND a.domain = ?2", (account_id, domain))
    return [r[0] for r in rows]

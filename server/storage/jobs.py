"""Leases that let several processes share background work: one per periodic job, one per id node."""

from __future__ import annotations

from server.ports import Tx


async def take_lease(tx: Tx, name: str, holder: str, now: float, until: float) -> bool:
    """Hold the job `name` until `until` unless another holder's lease is still running."""
    await tx.execute("INSERT INTO job_leases (name, holder, held_until) VALUES (?, '', 0) ON CONFLICT (name) DO NOTHING",
                     (name,))
    changed = await tx.execute(
        "UPDATE job_leases SET holder = ?, held_until = ?, last_run_at = ? WHERE name = ? "
        "AND (held_until < ? OR holder = ?)", (holder, until, now, name, now, holder))
    return changed == 1


async def take_node(tx: Tx, holder: str, now: float, until: float, max_node: int) -> int | None:
    """The lowest node number free (never held, or its holder's lease ran out), now held by `holder`."""
    held = {row["node"] for row in await tx.fetchall("SELECT node FROM id_nodes WHERE held_until >= ?", (now,))}
    for node in range(max_node + 1):
        if node in held:
            continue
        await tx.execute(
            "INSERT INTO id_nodes (node, holder, held_until) VALUES (?, ?, ?) "
            "ON CONFLICT (node) DO UPDATE SET holder = excluded.holder, held_until = excluded.held_until "
            "WHERE id_nodes.held_until < ?", (node, holder, until, now))
        if await tx.fetchval("SELECT holder FROM id_nodes WHERE node = ?", (node,)) == holder:
            return node
    return None


async def renew_node(tx: Tx, node: int, holder: str, until: float) -> bool:
    return await tx.execute("UPDATE id_nodes SET held_until = ? WHERE node = ? AND holder = ?",
                            (until, node, holder)) == 1


async def release_node(tx: Tx, node: int, holder: str) -> None:
    await tx.execute("DELETE FROM id_nodes WHERE node = ? AND holder = ?", (node, holder))

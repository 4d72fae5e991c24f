"""This process's node number for ids (server/ids.py), leased in the database and renewed while the
process runs, so that no two live processes sharing a database mint ids with the same node bits."""

from __future__ import annotations

import logging
import time

from server import ids
from server.ports import Store
from server.storage import jobs as job_store

log = logging.getLogger("crosstalk.jobs")
LEASE_SECONDS = 120.0


class NodeLeaseError(Exception):
    pass


class NodeLease:
    def __init__(self, db: Store, holder: str) -> None:
        self.db = db
        self.holder = holder
        self.node: int | None = None

    async def acquire(self) -> int:
        now = time.time()
        async with self.db.transaction() as tx:
            node = await job_store.take_node(tx, self.holder, now, now + LEASE_SECONDS, ids.MAX_NODE)
        if node is None:
            raise NodeLeaseError(f"all {ids.MAX_NODE + 1} id node numbers are held by running processes")
        self.node = node
        ids.GENERATOR.set_node(node)
        return node

    async def renew(self) -> None:
        if self.node is None:
            return
        async with self.db.transaction() as tx:
            held = await job_store.renew_node(tx, self.node, self.holder, time.time() + LEASE_SECONDS)
        if not held:  # paused for longer than the lease and another process took it: take a new one
            log.warning("id node %d was taken over; taking another", self.node)
            await self.acquire()

    async def release(self) -> None:
        if self.node is None:
            return
        async with self.db.transaction() as tx:
            await job_store.release_node(tx, self.node, self.holder)
        self.node = None

"""The SQLite store copies its write-ahead log back into the database in the background: every few
seconds, and sooner while commits come in a burst (a post's fan-out writes a page per follower), so that
the WAL never grows to the size at which SQLite's own checkpoint runs inside a commit and stalls every
writer waiting behind it."""

from __future__ import annotations

import asyncio

from server.storage.db import Database


def test_a_burst_of_commits_is_checkpointed_before_the_interval_ends(tmp_path):
    async def run() -> tuple[int, int]:
        db = Database(tmp_path / "crosstalk.sqlite3", readers=1)
        await db.open()
        try:
            async with db.transaction() as tx:
                await tx.execute("CREATE TABLE burst (n INTEGER)")
            db.start_background_checkpoints(every=3600, busy_every=0.05, busy_commits=10)
            for n in range(5):  # fewer commits than a burst: left to the (hour-long) interval
                async with db.transaction() as tx:
                    await tx.execute("INSERT INTO burst (n) VALUES (?)", (n,))
            await asyncio.sleep(0.3)
            quiet = db.background_checkpoints
            for n in range(30):
                async with db.transaction() as tx:
                    await tx.execute("INSERT INTO burst (n) VALUES (?)", (n,))
            for _ in range(40):
                if db.background_checkpoints:
                    break
                await asyncio.sleep(0.05)
            return quiet, db.background_checkpoints
        finally:
            await db.close()

    quiet, burst = asyncio.run(run())
    assert quiet == 0
    assert burst >= 1

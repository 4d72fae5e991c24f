"""The signer of every inbox POST is looked up by key id: that look-up must use an index, not scan
every account (bench/scenarios/inbox.py measured the scan at ~3 ms per request at 10,000 accounts)."""

from __future__ import annotations

import asyncio

from server.storage import remote_actors as fed_store
from server.storage.accounts import ACCOUNT_COLS
from server.storage.db import Database


def _remote(i: int) -> dict[str, object]:
    uri = f"https://remote{i % 7}.example/users/u{i}"
    values: dict[str, object] = {f: "" for f in fed_store.REMOTE_FIELDS}
    values.update(username=f"u{i}", domain=f"remote{i % 7}.example", fields="[]", locked=0, bot=0, discoverable=1,
                  uri=uri, url=uri, inbox_url=f"{uri}/inbox", key_id=f"{uri}#main-key", actor_type="Person",
                  public_key_pem=f"PEM {i}", moved_to_uri=None)
    return values


def test_account_by_key_id_finds_the_signer_through_an_index(tmp_path):
    async def check() -> None:
        db = Database(tmp_path / "crosstalk.sqlite3", readers=1)
        await db.open()
        try:
            async with db.transaction() as tx:
                for i in range(60):
                    await fed_store.upsert_remote_account(tx, _remote(i))
            found = await fed_store.account_by_key_id(db, "https://remote3.example/users/u17#main-key")
            assert found is not None and found.username == "u17" and found.public_key_pem == "PEM 17"
            assert await fed_store.account_by_key_id(db, "https://remote3.example/users/nobody#main-key") is None
            # The statement account_by_key_id runs, as SQLite plans it.
            plan = await db.fetchall(f"EXPLAIN QUERY PLAN SELECT {ACCOUNT_COLS} FROM accounts"
                                     " WHERE key_id = ? AND domain != ''", ("x",))
            details = " ".join(row[3] for row in plan)
            assert "USING INDEX accounts_key_id" in details, details
        finally:
            await db.close()

    asyncio.run(check())

"""Remote actors as we store them: upserting fetched actor documents, finding them by key, their
local followers and their deletion or move; and the instance actor that signs our fetches."""

from __future__ import annotations

from typing import Any

from server.domain.records import Account
from server.ids import new_id, now_iso
from server.ports import Reader, Tx
from server.storage.accounts import ACCOUNT_COLS

REMOTE_FIELDS = ("username", "domain", "display_name", "note", "fields", "locked", "bot", "discoverable",
                 "avatar_url", "header_url", "uri", "url", "inbox_url", "shared_inbox_url", "outbox_url",
                 "followers_url", "following_url", "featured_url", "public_key_pem", "key_id", "actor_type",
                 "moved_to_uri")


async def upsert_remote_account(tx: Tx, values: dict[str, Any]) -> int:
    """Insert or refresh a remote actor, keyed by its URI. Returns the account id."""
    assert set(values) == set(REMOTE_FIELDS), set(REMOTE_FIELDS) ^ set(values)
    now = now_iso()
    existing = await tx.fetchone("SELECT id FROM accounts WHERE uri = ?", (values["uri"],))
    if existing is None:
        # The same handle with another URI (re-created actor): the new actor takes the handle over.
        await tx.execute("UPDATE accounts SET username = username || '~' || id WHERE lower(username) = lower(?)"
                         " AND domain = ? AND uri != ?", (values["username"], values["domain"], values["uri"]))
        cols = ", ".join(REMOTE_FIELDS)
        # ON CONFLICT: another transaction may have stored this actor since our read; then refresh it.
        account_id = await tx.fetchval(
            f"INSERT INTO accounts (id, {cols}, created_at, updated_at, fetched_at)"
            f" VALUES (?, {', '.join('?' * len(REMOTE_FIELDS))}, ?, ?, ?) ON CONFLICT (uri) DO NOTHING RETURNING id",
            (new_id(), *(values[f] for f in REMOTE_FIELDS), now, now, now))
        if account_id is not None:
            return int(account_id)
        existing = await tx.fetchone("SELECT id FROM accounts WHERE uri = ?", (values["uri"],))
        assert existing is not None  # the insert conflicted on this very URI
    assignments = ", ".join(f"{f} = ?" for f in REMOTE_FIELDS if f not in ("uri", "domain"))
    await tx.execute(f"UPDATE accounts SET {assignments}, updated_at = ?, fetched_at = ?, deleted_at = NULL WHERE id = ?",
                     (*(values[f] for f in REMOTE_FIELDS if f not in ("uri", "domain")), now, now, existing[0]))
    return existing[0]


async def account_by_key_id(db: Reader, key_id: str) -> Account | None:
    row = await db.fetchone(f"SELECT {ACCOUNT_COLS} FROM accounts WHERE key_id = ? AND domain != ''", (key_id,))
    return None if row is None else Account(**dict(row))


async def mark_account_deleted(tx: Tx, account_id: int) -> None:
    await tx.execute("UPDATE accounts SET deleted_at = ?, suspended = 1 WHERE id = ?", (now_iso(), account_id))
    await tx.execute("DELETE FROM follows WHERE account_id = ?1 OR target_account_id = ?1", (account_id,))
    await tx.execute("DELETE FROM follow_requests WHERE account_id = ?1 OR target_account_id = ?1", (account_id,))
    await tx.execute("UPDATE statuses SET deleted_at = ? WHERE account_id = ? AND deleted_at IS NULL",
                     (now_iso(), account_id))
    await tx.execute("DELETE FROM home_feed WHERE status_id IN (SELECT id FROM statuses WHERE account_id = ?)",
                     (account_id,))


async def record_move(tx: Tx, account_id: int, target_uri: str) -> None:
    await tx.execute("INSERT INTO account_moves (id, account_id, target_uri, created_at) VALUES (?, ?, ?, ?)",
                     (new_id(), account_id, target_uri, now_iso()))
    await tx.execute("UPDATE accounts SET moved_to_uri = ? WHERE id = ?", (target_uri, account_id))


async def ensure_instance_actor(tx: Tx, base_url: str, private_pem: str, public_pem: str) -> int:
    row = await tx.fetchone("SELECT id FROM accounts WHERE uri = ?", (f"{base_url}/actor",))
    if row is not None:
        return int(row[0])
    now = now_iso()
    # Processes starting together may race here: the first insert wins, the others read its row.
    await tx.execute(
        "INSERT INTO accounts (id, username, domain, uri, url, inbox_url, shared_inbox_url, outbox_url,"
        " public_key_pem, private_key_pem, key_id, actor_type, discoverable, locked, created_at, updated_at)"
        " VALUES (?, 'actor', '', ?, ?, ?, ?, ?, ?, ?, ?, 'Application', 0, 1, ?, ?) ON CONFLICT DO NOTHING",
        (new_id(), f"{base_url}/actor", f"{base_url}/about", f"{base_url}/actor/inbox", f"{base_url}/inbox",
         f"{base_url}/actor/outbox", public_pem, private_pem, f"{base_url}/actor#main-key", now, now))
    return int(await tx.fetchval("SELECT id FROM accounts WHERE uri = ?", (f"{base_url}/actor",)))


async def instance_actor_row(db: Reader, base_url: str) -> Any:
    return await db.fetchone("SELECT id, private_key_pem FROM accounts WHERE uri = ?", (f"{base_url}/actor",))


async def instance_actor_uri(db: Reader) -> str | None:
    return await db.fetchval("SELECT uri FROM accounts WHERE username = 'actor' AND domain = ''"
                             " AND actor_type = 'Application'")


async def remote_follower_inboxes(db: Reader, account_id: int) -> list[tuple[str, str]]:
    rows = await db.fetchall(
        "SELECT a.inbox_url, a.shared_inbox_url FROM follows f JOIN accounts a ON a.id = f.account_id"
        " WHERE f.target_account_id = ? AND a.domain != '' AND a.deleted_at IS NULL", (account_id,))
    return [(r[0], r[1]) for r in rows]


async def local_follower_ids_of_remote(db: Reader, account_id: int) -> list[int]:
    rows = await db.fetchall(
        "SELECT f.account_id FROM follows f JOIN accounts a ON a.id = f.account_id WHERE f.target_account_id = ?"
        " AND a.domain = ''", (account_id,))
    return [r[0] for r in rows]


async def has_local_followers(db: Reader, account_id: int) -> bool:
    return await db.fetchval(
        "SELECT 1 FROM follows f JOIN accounts a ON a.id = f.account_id WHERE f.target_account_id = ? AND a.domain = ''"
        " LIMIT 1", (account_id,)) is not None


async def local_account_id_by_url(db: Reader, url: str) -> int | None:
    return await db.fetchval("SELECT id FROM accounts WHERE url = ? AND domain = ''", (url,))

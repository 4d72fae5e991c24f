"""Federation storage: remote accounts, the inbox log, the delivery queue, hosts, tombstones."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import msgspec

from server.ids import new_id, now_iso
from server.records import Account
from server.storage.accounts import ACCOUNT_COLS, Reader

# -- remote accounts -------------------------------------------------------------------------------

REMOTE_FIELDS = ("username", "domain", "display_name", "note", "fields", "locked", "bot", "discoverable",
                 "avatar_url", "header_url", "uri", "url", "inbox_url", "shared_inbox_url", "outbox_url",
                 "followers_url", "following_url", "featured_url", "public_key_pem", "key_id", "actor_type",
                 "moved_to_uri")


async def upsert_remote_account(tx: Any, values: dict[str, Any]) -> int:
    """Insert or refresh a remote actor, keyed by its URI. Returns the account id."""
    assert set(values) == set(REMOTE_FIELDS), set(REMOTE_FIELDS) ^ set(values)
    now = now_iso()
    existing = await tx.fetchone("SELECT id FROM accounts WHERE uri = ?", (values["uri"],))
    if existing is None:
        # The same handle with another URI (re-created actor): the new actor takes the handle over.
        await tx.execute("UPDATE accounts SET username = username || '~' || id WHERE lower(username) = lower(?)"
                         " AND domain = ? AND uri != ?", (values["username"], values["domain"], values["uri"]))
        account_id = new_id()
        cols = ", ".join(REMOTE_FIELDS)
        await tx.execute(
            f"INSERT INTO accounts (id, {cols}, created_at, updated_at, fetched_at)"
            f" VALUES (?, {', '.join('?' * len(REMOTE_FIELDS))}, ?, ?, ?)",
            (account_id, *(values[f] for f in REMOTE_FIELDS), now, now, now))
        return account_id
    assignments = ", ".join(f"{f} = ?" for f in REMOTE_FIELDS if f not in ("uri", "domain"))
    await tx.execute(f"UPDATE accounts SET {assignments}, updated_at = ?, fetched_at = ?, deleted_at = NULL WHERE id = ?",
                     (*(values[f] for f in REMOTE_FIELDS if f not in ("uri", "domain")), now, now, existing[0]))
    return existing[0]


async def account_by_key_id(db: Reader, key_id: str) -> Account | None:
    row = await db.fetchone(f"SELECT {ACCOUNT_COLS} FROM accounts WHERE key_id = ? AND domain != ''", (key_id,))
    return None if row is None else Account(**dict(row))


async def mark_account_deleted(tx: Any, account_id: int) -> None:
    await tx.execute("UPDATE accounts SET deleted_at = ?, suspended = 1 WHERE id = ?", (now_iso(), account_id))
    await tx.execute("DELETE FROM follows WHERE account_id = ?1 OR target_account_id = ?1", (account_id,))
    await tx.execute("DELETE FROM follow_requests WHERE account_id = ?1 OR target_account_id = ?1", (account_id,))
    await tx.execute("UPDATE statuses SET deleted_at = ? WHERE account_id = ? AND deleted_at IS NULL",
                     (now_iso(), account_id))
    await tx.execute("DELETE FROM home_feed WHERE status_id IN (SELECT id FROM statuses WHERE account_id = ?)",
                     (account_id,))


async def ensure_instance_actor(tx: Any, base_url: str, private_pem: str, public_pem: str) -> int:
    row = await tx.fetchone("SELECT id FROM accounts WHERE uri = ?", (f"{base_url}/actor",))
    if row is not None:
        return row[0]
    account_id = new_id()
    now = now_iso()
    await tx.execute(
        "INSERT INTO accounts (id, username, domain, uri, url, inbox_url, shared_inbox_url, outbox_url,"
        " public_key_pem, private_key_pem, key_id, actor_type, discoverable, locked, created_at, updated_at)"
        " VALUES (?, 'actor', '', ?, ?, ?, ?, ?, ?, ?, ?, 'Application', 0, 1, ?, ?)",
        (account_id, f"{base_url}/actor", f"{base_url}/about", f"{base_url}/actor/inbox", f"{base_url}/inbox",
         f"{base_url}/actor/outbox", public_pem, private_pem, f"{base_url}/actor#main-key", now, now))
    return account_id


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


# -- inbox -----------------------------------------------------------------------------------------

async def record_inbox(tx: Any, activity_id: str, actor_uri: str, body: str) -> bool:
    """Persist an inbound activity; False if this activity id was seen before (replay or retry)."""
    changed = await tx.execute(
        "INSERT OR IGNORE INTO inbox_activities (id, activity_id, actor_uri, body, received_at) VALUES (?, ?, ?, ?, ?)",
        (new_id(), activity_id, actor_uri, body, now_iso()))
    return bool(changed)


async def pending_inbox(db: Reader, limit: int = 50) -> list[Any]:
    return await db.fetchall(
        "SELECT id, activity_id, actor_uri, body, attempts FROM inbox_activities WHERE processed_at IS NULL"
        " ORDER BY id LIMIT ?", (limit,))


async def finish_inbox(tx: Any, row_id: int, error: str | None, give_up: bool = True) -> None:
    if error is None or give_up:
        await tx.execute("UPDATE inbox_activities SET processed_at = ?, error = ?, attempts = attempts + 1 WHERE id = ?",
                         (now_iso(), error, row_id))
    else:
        await tx.execute("UPDATE inbox_activities SET attempts = attempts + 1, error = ? WHERE id = ?", (error, row_id))


# -- delivery queue -------------------------------------------------------------------------------

async def enqueue(tx: Any, activity_id: str, sender_id: int, body: bytes, inboxes: Iterable[tuple[str, str]]) -> int:
    """Store the activity once and one pending delivery per (inbox, host). Returns the count queued."""
    targets = list(dict.fromkeys(inboxes))
    if not targets:
        return 0
    outbox_id = new_id()
    await tx.execute("INSERT INTO outbox_activities (id, activity_id, sender_id, body, created_at) VALUES (?, ?, ?, ?, ?)",
                     (outbox_id, activity_id, sender_id, body, now_iso()))
    now = time.time()
    await tx.executemany(
        "INSERT INTO deliveries (id, outbox_id, inbox_url, host, next_attempt_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        [(new_id(), outbox_id, inbox, host, now, now) for inbox, host in targets])
    return len(targets)


class DueDelivery(msgspec.Struct):
    id: int
    inbox_url: str
    host: str
    attempts: int
    body: bytes
    sender_id: int
    activity_id: str


async def due_deliveries(db: Reader, now: float, limit: int, skip_hosts: Iterable[str] = ()) -> list[DueDelivery]:
    skip = list(skip_hosts)
    extra = f" AND d.host NOT IN ({','.join('?' * len(skip))})" if skip else ""
    rows = await db.fetchall(
        "SELECT d.id, d.inbox_url, d.host, d.attempts, o.body, o.sender_id, o.activity_id FROM deliveries d"
        " JOIN outbox_activities o ON o.id = d.outbox_id"
        f" WHERE d.state = 'pending' AND d.next_attempt_at <= ?{extra} ORDER BY d.next_attempt_at LIMIT ?",
        [now, *skip, limit])
    return [DueDelivery(*r) for r in rows]


async def next_due_at(db: Reader) -> float | None:
    return await db.fetchval("SELECT min(next_attempt_at) FROM deliveries WHERE state = 'pending'")


async def delivery_done(tx: Any, delivery_id: int, state: str, attempts: int, next_at: float,
                        status: int | None, error: str | None) -> None:
    await tx.execute(
        "UPDATE deliveries SET state = ?, attempts = ?, next_attempt_at = ?, last_status = ?, last_error = ?,"
        " updated_at = ? WHERE id = ?", (state, attempts, next_at, status, error, time.time(), delivery_id))


async def postpone_host(tx: Any, host: str, until: float) -> None:
    await tx.execute("UPDATE deliveries SET next_attempt_at = max(next_attempt_at, ?) WHERE host = ? AND state = 'pending'",
                     (until, host))


async def prune_deliveries(tx: Any, older_than: float) -> None:
    await tx.execute("DELETE FROM deliveries WHERE state != 'pending' AND updated_at < ?", (older_than,))
    await tx.execute("DELETE FROM outbox_activities WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.outbox_id ="
                     " outbox_activities.id) AND created_at < ?",
                     (datetime.fromtimestamp(older_than, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),))


async def delivery_summary(db: Reader) -> list[Any]:
    return await db.fetchall(
        "SELECT d.host, sum(d.state = 'pending'), sum(d.state = 'failed'), sum(d.state = 'done'),"
        " max(CASE WHEN d.state = 'failed' THEN d.last_error END), coalesce(h.unavailable, 0)"
        " FROM deliveries d LEFT JOIN federation_hosts h ON h.host = d.host GROUP BY d.host ORDER BY d.host")


async def pending_count(db: Reader) -> int:
    return await db.fetchval("SELECT count(*) FROM deliveries WHERE state = 'pending'") or 0


# -- hosts -----------------------------------------------------------------------------------------

async def host(db: Reader, name: str) -> Any:
    return await db.fetchone("SELECT * FROM federation_hosts WHERE host = ?", (name,))


async def signature_formats(db: Reader) -> dict[str, str]:
    rows = await db.fetchall("SELECT host, signature_format FROM federation_hosts WHERE signature_format IS NOT NULL")
    return {r[0]: r[1] for r in rows}


async def save_host(tx: Any, name: str, **values: Any) -> None:
    await tx.execute("INSERT OR IGNORE INTO federation_hosts (host) VALUES (?)", (name,))
    if values:
        assignments = ", ".join(f"{k} = ?" for k in values)
        await tx.execute(f"UPDATE federation_hosts SET {assignments} WHERE host = ?", (*values.values(), name))


async def unavailable_hosts(db: Reader) -> set[str]:
    return {r[0] for r in await db.fetchall("SELECT host FROM federation_hosts WHERE unavailable = 1")}


# -- tombstones and reactions ------------------------------------------------------------------------

async def add_tombstone(tx: Any, uri: str, actor_uri: str | None) -> None:
    await tx.execute("INSERT OR IGNORE INTO tombstones (uri, actor_uri, deleted_at) VALUES (?, ?, ?)",
                     (uri, actor_uri, now_iso()))


async def is_tombstoned(db: Reader, uri: str) -> bool:
    return await db.fetchval("SELECT 1 FROM tombstones WHERE uri = ?", (uri,)) is not None


async def set_reaction(tx: Any, account_id: int, status_id: int, name: str, uri: str | None, on: bool) -> None:
    if on:
        await tx.execute("INSERT OR IGNORE INTO status_reactions (id, account_id, status_id, name, uri, created_at)"
                         " VALUES (?, ?, ?, ?, ?, ?)", (new_id(), account_id, status_id, name, uri, now_iso()))
    else:
        await tx.execute("DELETE FROM status_reactions WHERE account_id = ? AND status_id = ? AND (uri = ? OR name = ?)",
                         (account_id, status_id, uri, name))


async def record_move(tx: Any, account_id: int, target_uri: str) -> None:
    await tx.execute("INSERT INTO account_moves (id, account_id, target_uri, created_at) VALUES (?, ?, ?, ?)",
                     (new_id(), account_id, target_uri, now_iso()))
    await tx.execute("UPDATE accounts SET moved_to_uri = ? WHERE id = ?", (target_uri, account_id))


async def favourite_by_uri(db: Reader, uri: str) -> Any:
    return await db.fetchone("SELECT account_id, status_id FROM favourites WHERE uri = ?", (uri,))


async def insert_remote_media(tx: Any, account_id: int, status_id: int, position: int, attachment: Any) -> None:
    """A remote attachment, referenced by URL (we do not copy remote files)."""
    media_type = attachment.media_type or ""
    kind = ("image" if media_type.startswith("image/") else "video" if media_type.startswith("video/")
            else "audio" if media_type.startswith("audio/") else "unknown")
    focus = attachment.focal_point or (0.0, 0.0)
    await tx.execute(
        "INSERT INTO media_attachments (id, account_id, status_id, type, mime_type, remote_url, description,"
        " focus_x, focus_y, blurhash, position, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (new_id(), account_id, status_id, kind, media_type, attachment.url, (attachment.name or "")[:1500] or None,
         focus[0], focus[1], attachment.blurhash, position, now_iso()))


async def instance_actor_row(db: Reader, base_url: str) -> Any:
    return await db.fetchone("SELECT id, private_key_pem FROM accounts WHERE uri = ?", (f"{base_url}/actor",))


async def status_id_by_url(db: Reader, url: str) -> int | None:
    return await db.fetchval("SELECT id FROM statuses WHERE url = ? AND deleted_at IS NULL", (url,))


async def local_account_id_by_url(db: Reader, url: str) -> int | None:
    return await db.fetchval("SELECT id FROM accounts WHERE url = ? AND domain = ''", (url,))


async def open_circuit_hosts(db: Reader, now: float) -> list[str]:
    return [r[0] for r in await db.fetchall("SELECT host FROM federation_hosts WHERE circuit_open_until > ?", (now,))]


async def mark_inbox_owner_gone(tx: Any, inbox_url: str) -> None:
    """A 410 from a personal inbox means the actor is gone (never for a shared inbox)."""
    rows = await tx.fetchall("SELECT id FROM accounts WHERE inbox_url = ? AND domain != ''"
                             " AND (shared_inbox_url = '' OR shared_inbox_url != inbox_url)", (inbox_url,))
    for r in rows:
        await mark_account_deleted(tx, r[0])


async def host_seen(tx: Any, name: str) -> None:
    """Any request from a host proves it is alive again."""
    await tx.execute("UPDATE federation_hosts SET unavailable = 0, failure_days = '[]', consecutive_failures = 0,"
                     " circuit_open_until = 0, last_seen_at = ? WHERE host = ? AND (unavailable = 1 OR"
                     " consecutive_failures > 0)", (now_iso(), name))


async def instance_actor_uri(db: Reader) -> str | None:
    return await db.fetchval("SELECT uri FROM accounts WHERE username = 'actor' AND domain = ''"
                             " AND actor_type = 'Application'")

"""Delivery to other servers: the queue of outgoing activities (one row per activity, one per target
inbox), and what we know of each receiving host (availability, circuit breaker, the signature format
it accepts, when it was last seen)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import msgspec

from server.ids import new_id, now_iso
from server.ports import Reader, Tx
from server.storage.remote_actors import mark_account_deleted


async def claim_event_activity(tx: Tx, event_id: int, activity_id: str) -> bool:
    """True the first time an event queues this activity; False when a repeated dispatch already did."""
    return await tx.execute("INSERT INTO event_activities (event_id, activity_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                            (event_id, activity_id)) == 1


async def enqueue(tx: Tx, activity_id: str, sender_id: int, body: bytes, inboxes: Iterable[tuple[str, str]]) -> int:
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


async def claim_due_deliveries(tx: Tx, now: float, until: float, limit: int,
                               skip_hosts: Iterable[str] = ()) -> list[DueDelivery]:
    """Take up to `limit` due deliveries for an attempt. The claim is the next attempt time moved to
    `until`: if the process dies mid-attempt, the row falls due again then, for any process."""
    skip = list(skip_hosts)
    extra = f" AND d.host NOT IN ({','.join('?' * len(skip))})" if skip else ""
    rows = await tx.fetchall(
        "SELECT d.id, d.inbox_url, d.host, d.attempts, o.body, o.sender_id, o.activity_id FROM deliveries d"
        " JOIN outbox_activities o ON o.id = d.outbox_id"
        f" WHERE d.state = 'pending' AND d.next_attempt_at <= ?{extra} ORDER BY d.next_attempt_at LIMIT ?"
        f"{tx.dialect.skip_locked_of('d')}", [now, *skip, limit])
    if rows:
        await tx.executemany("UPDATE deliveries SET next_attempt_at = ? WHERE id = ?", [(until, r[0]) for r in rows])
    return [DueDelivery(*r) for r in rows]


async def next_due_at(db: Reader) -> float | None:
    return await db.fetchval("SELECT min(next_attempt_at) FROM deliveries WHERE state = 'pending'")


async def delivery_done(tx: Tx, delivery_id: int, state: str, attempts: int, next_at: float,
                        status: int | None, error: str | None) -> None:
    await tx.execute(
        "UPDATE deliveries SET state = ?, attempts = ?, next_attempt_at = ?, last_status = ?, last_error = ?,"
        " updated_at = ? WHERE id = ?", (state, attempts, next_at, status, error, time.time(), delivery_id))


async def deliveries_done(tx: Tx, rows: Iterable[tuple[int, int, int | None]], at: float) -> None:
    """Mark deliveries (id, attempts, HTTP status) done in one statement."""
    await tx.executemany(
        "UPDATE deliveries SET state = 'done', attempts = ?, next_attempt_at = ?, last_status = ?, last_error = NULL,"
        " updated_at = ? WHERE id = ?", [(attempts, at, status, at, delivery_id) for delivery_id, attempts, status in rows])


async def postpone_host(tx: Tx, host: str, until: float) -> None:
    await tx.execute(f"UPDATE deliveries SET next_attempt_at = {tx.dialect.greatest('next_attempt_at', '?')}"
                     " WHERE host = ? AND state = 'pending'", (until, host))


async def prune_deliveries(tx: Tx, older_than: float) -> None:
    await tx.execute("DELETE FROM deliveries WHERE state != 'pending' AND updated_at < ?", (older_than,))
    await tx.execute("DELETE FROM outbox_activities WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.outbox_id ="
                     " outbox_activities.id) AND created_at < ?",
                     (datetime.fromtimestamp(older_than, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),))


async def delivery_summary(db: Reader) -> list[Any]:
    return await db.fetchall(
        "SELECT d.host, count(*) FILTER (WHERE d.state = 'pending'), count(*) FILTER (WHERE d.state = 'failed'),"
        " count(*) FILTER (WHERE d.state = 'done'),"
        " max(CASE WHEN d.state = 'failed' THEN d.last_error END), coalesce(h.unavailable, 0)"
        " FROM deliveries d LEFT JOIN federation_hosts h ON h.host = d.host GROUP BY d.host, h.unavailable"
        " ORDER BY d.host")


async def pending_count(db: Reader) -> int:
    return await db.fetchval("SELECT count(*) FROM deliveries WHERE state = 'pending'") or 0


async def host(db: Reader, name: str) -> Any:
    return await db.fetchone("SELECT * FROM federation_hosts WHERE host = ?", (name,))


async def signature_formats(db: Reader) -> dict[str, str]:
    rows = await db.fetchall("SELECT host, signature_format FROM federation_hosts WHERE signature_format IS NOT NULL")
    return {r[0]: r[1] for r in rows}


async def save_host(tx: Tx, name: str, **values: Any) -> None:
    await tx.execute("INSERT INTO federation_hosts (host) VALUES (?) ON CONFLICT DO NOTHING", (name,))
    if values:
        assignments = ", ".join(f"{k} = ?" for k in values)
        await tx.execute(f"UPDATE federation_hosts SET {assignments} WHERE host = ?", (*values.values(), name))


async def unavailable_hosts(db: Reader) -> set[str]:
    return {r[0] for r in await db.fetchall("SELECT host FROM federation_hosts WHERE unavailable = 1")}


async def open_circuit_hosts(db: Reader, now: float) -> list[str]:
    return [r[0] for r in await db.fetchall("SELECT host FROM federation_hosts WHERE circuit_open_until > ?", (now,))]


async def host_seen(tx: Tx, name: str) -> None:
    """Any request from a host proves it is alive again."""
    await tx.execute("UPDATE federation_hosts SET unavailable = 0, failure_days = '[]', consecutive_failures = 0,"
                     " circuit_open_until = 0, last_seen_at = ? WHERE host = ? AND (unavailable = 1 OR"
                     " consecutive_failures > 0)", (now_iso(), name))


async def mark_inbox_owner_gone(tx: Tx, inbox_url: str) -> None:
    """A 410 from a personal inbox means the actor is gone (never for a shared inbox)."""
    rows = await tx.fetchall("SELECT id FROM accounts WHERE inbox_url = ? AND domain != ''"
                             " AND (shared_inbox_url = '' OR shared_inbox_url != inbox_url)", (inbox_url,))
    for r in rows:
        await mark_account_deleted(tx, r[0])

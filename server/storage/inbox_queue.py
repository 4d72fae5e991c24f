"""The inbox queue: activities other servers sent us, persisted before we acknowledge them, and the
per-actor claims of the processes that apply them."""

from __future__ import annotations

import msgspec

from server.ids import new_id, now_iso
from server.ports import Reader, Tx


async def record_inbox(tx: Tx, activity_id: str, actor_uri: str, body: str, host: str) -> bool:
    """Persist an inbound activity; False if this activity id was seen before (replay or retry)."""
    changed = await tx.execute(
        "INSERT INTO inbox_activities (id, activity_id, actor_uri, body, received_at, host)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", (new_id(), activity_id, actor_uri, body, now_iso(), host))
    return bool(changed)


INSERT_ROWS = 200  # rows per INSERT statement (6 parameters each, far below either engine's limit)


async def record_inbox_many(tx: Tx, items: list[tuple[str, str, str, str]]) -> list[bool]:
    """record_inbox for several (activity id, actor URI, body, host) at once, in as few statements as
    possible: per item, whether it is new (False for an id seen before, or earlier in `items`)."""
    fresh: set[str] = set()
    received = now_iso()
    for start in range(0, len(items), INSERT_ROWS):
        chunk = items[start:start + INSERT_ROWS]
        params: list[object] = []
        for activity_id, actor_uri, body, host in chunk:
            params += (new_id(), activity_id, actor_uri, body, received, host)
        rows = await tx.fetchall(
            "INSERT INTO inbox_activities (id, activity_id, actor_uri, body, received_at, host) VALUES "
            + ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(chunk)) + " ON CONFLICT DO NOTHING RETURNING activity_id",
            params)
        fresh.update(r[0] for r in rows)
    out = []
    for activity_id, *_rest in items:
        out.append(activity_id in fresh)
        fresh.discard(activity_id)  # a second copy in the same batch is a duplicate
    return out


class PendingActivity(msgspec.Struct):
    id: int
    activity_id: str
    actor_uri: str
    body: str
    attempts: int


async def pending_inbox_actors(db: Reader, skip_hosts: list[str], skip_actors: list[str],
                               limit: int) -> list[tuple[str, str]]:
    """(actor URI, host) of actors with activities waiting, the longest-waiting first; hosts and
    actors the worker has no room for (or is already serving) are left out in the query, so that
    they cannot crowd the others out of the page."""
    sql = "SELECT actor_uri, max(host) FROM inbox_activities WHERE processed_at IS NULL"
    if skip_hosts:
        sql += f" AND host NOT IN ({','.join('?' * len(skip_hosts))})"
    if skip_actors:
        sql += f" AND actor_uri NOT IN ({','.join('?' * len(skip_actors))})"
    rows = await db.fetchall(sql + " GROUP BY actor_uri ORDER BY min(id) LIMIT ?",
                             [*skip_hosts, *skip_actors, limit])
    return [(r[0], r[1]) for r in rows]


async def pending_inbox_of(db: Reader, actor_uri: str, limit: int) -> list[PendingActivity]:
    """An actor's waiting activities in arrival order."""
    rows = await db.fetchall(
        "SELECT id, activity_id, actor_uri, body, attempts FROM inbox_activities WHERE processed_at IS NULL"
        " AND actor_uri = ? ORDER BY id LIMIT ?", (actor_uri, limit))
    return [PendingActivity(*r) for r in rows]


async def claim_inbox_actors(tx: Tx, actor_uris: list[str], holder: str, now: float, until: float) -> list[str]:
    """Of these actors, those this process may now apply activities for (nobody else holds them)."""
    taken = []
    for actor_uri in actor_uris:
        changed = await tx.execute(
            "INSERT INTO inbox_actor_claims (actor_uri, holder, held_until) VALUES (?, ?, ?) "
            "ON CONFLICT (actor_uri) DO UPDATE SET holder = excluded.holder, held_until = excluded.held_until "
            "WHERE inbox_actor_claims.held_until < ? OR inbox_actor_claims.holder = excluded.holder",
            (actor_uri, holder, until, now))
        if changed:
            taken.append(actor_uri)
    return taken


async def release_inbox_actor(tx: Tx, actor_uri: str, holder: str) -> None:
    await tx.execute("DELETE FROM inbox_actor_claims WHERE actor_uri = ? AND holder = ?", (actor_uri, holder))


async def finish_inbox(tx: Tx, row_id: int, error: str | None, give_up: bool = True) -> None:
    if error is None or give_up:
        await tx.execute("UPDATE inbox_activities SET processed_at = ?, error = ?, attempts = attempts + 1 WHERE id = ?",
                         (now_iso(), error, row_id))
    else:
        await tx.execute("UPDATE inbox_activities SET attempts = attempts + 1, error = ? WHERE id = ?", (error, row_id))

"""Follows, follow requests, blocks and mutes between accounts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from server.domain.records import Relationship
from server.ids import new_id, now_iso
from server.ports import Reader, Tx
from server.storage.dialect import marks
from server.storage.paging import Page, window


async def follow(db: Reader, account_id: int, target_id: int) -> Any:
    return await db.fetchone("SELECT * FROM follows WHERE account_id = ? AND target_account_id = ?",
                             (account_id, target_id))


async def follow_request(db: Reader, account_id: int, target_id: int) -> Any:
    return await db.fetchone("SELECT * FROM follow_requests WHERE account_id = ? AND target_account_id = ?",
                             (account_id, target_id))


async def follow_request_by_uri(db: Reader, uri: str) -> Any:
    return await db.fetchone("SELECT * FROM follow_requests WHERE uri = ?", (uri,))


async def follow_by_uri(db: Reader, uri: str) -> Any:
    return await db.fetchone("SELECT * FROM follows WHERE uri = ?", (uri,))


async def insert_follow(tx: Tx, account_id: int, target_id: int, *, show_reblogs: bool, notify: bool,
                        uri: str | None) -> bool:
    """Create or update a follow; returns True when it is new (counts then move)."""
    # Insert first: of two transactions following at once, exactly one inserts (the other waits for
    # it, then updates), so the counts move once.
    inserted = await tx.execute(
        "INSERT INTO follows (id, account_id, target_account_id, show_reblogs, notify, uri, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, target_account_id) DO NOTHING",
        (new_id(), account_id, target_id, int(show_reblogs), int(notify), uri, now_iso()))
    if not inserted:
        await tx.execute("UPDATE follows SET show_reblogs = ?, notify = ? WHERE account_id = ? AND target_account_id = ?",
                         (int(show_reblogs), int(notify), account_id, target_id))
        return False
    await move_follow_counts(tx, account_id, target_id, 1)
    return True


async def delete_follow(tx: Tx, account_id: int, target_id: int) -> bool:
    changed = await tx.execute("DELETE FROM follows WHERE account_id = ? AND target_account_id = ?",
                               (account_id, target_id))
    if changed:
        await move_follow_counts(tx, account_id, target_id, -1)
    return bool(changed)


async def move_follow_counts(tx: Tx, follower_id: int, target_id: int, delta: int) -> None:
    """A follow began (+1) or ended (-1): both accounts' counters in one statement, which locks the two
    rows in index order, so follows in opposite directions at the same moment cannot deadlock."""
    at_least_0 = tx.dialect.greatest
    await tx.execute(
        f"UPDATE accounts SET following_count = {at_least_0('0', 'following_count + CASE WHEN id = ?1 THEN ?3 ELSE 0 END')},"
        f" followers_count = {at_least_0('0', 'followers_count + CASE WHEN id = ?2 THEN ?3 ELSE 0 END')}"
        " WHERE id IN (?1, ?2)", (follower_id, target_id, delta))


async def insert_follow_request(tx: Tx, account_id: int, target_id: int, *, show_reblogs: bool, notify: bool,
                                uri: str | None) -> bool:
    changed = await tx.execute(
        "INSERT INTO follow_requests (id, account_id, target_account_id, show_reblogs, notify, uri, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (new_id(), account_id, target_id, int(show_reblogs), int(notify), uri, now_iso()))
    return bool(changed)


async def delete_follow_request(tx: Tx, account_id: int, target_id: int) -> Any:
    # One statement, so of two concurrent callers only one gets the row.
    return await tx.fetchone("DELETE FROM follow_requests WHERE account_id = ? AND target_account_id = ? RETURNING *",
                             (account_id, target_id))


async def pending_requests(db: Reader, target_id: int, max_id: int | None, since_id: int | None,
                           limit: int) -> list[tuple[int, int]]:
    sql = "SELECT id, account_id FROM follow_requests WHERE target_account_id = ?"
    cond, window_params, _order = window("id", Page(max_id=max_id, since_id=since_id))
    sql += cond
    params: list[Any] = [target_id, *window_params]
    params.append(limit)
    return [(r[0], r[1]) for r in await db.fetchall(sql + " ORDER BY id DESC LIMIT ?", params)]


async def follower_ids(db: Reader, target_id: int, local_only: bool = False) -> list[int]:
    sql = "SELECT f.account_id FROM follows f"
    if local_only:
        sql += " JOIN accounts a ON a.id = f.account_id AND a.domain = ''"
    return [r[0] for r in await db.fetchall(sql + " WHERE f.target_account_id = ?", (target_id,))]


async def followers_page(db: Reader, account_id: int, direction: str, max_id: int | None, since_id: int | None,
                         limit: int) -> list[tuple[int, int]]:
    """(follow row id, other account id), newest first. direction: 'followers' or 'following'."""
    mine, other = ("target_account_id", "account_id") if direction == "followers" else ("account_id", "target_account_id")
    sql = f"SELECT id, {other} FROM follows WHERE {mine} = ?"
    cond, window_params, _order = window("id", Page(max_id=max_id, since_id=since_id))
    sql += cond
    params: list[Any] = [account_id, *window_params]
    params.append(limit)
    return [(r[0], r[1]) for r in await db.fetchall(sql + " ORDER BY id DESC LIMIT ?", params)]


async def set_block(tx: Tx, account_id: int, target_id: int, on: bool, uri: str | None = None) -> bool:
    if on:
        return bool(await tx.execute(
            "INSERT INTO blocks (id, account_id, target_account_id, uri, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (new_id(), account_id, target_id, uri, now_iso())))
    return bool(await tx.execute("DELETE FROM blocks WHERE account_id = ? AND target_account_id = ?",
                                 (account_id, target_id)))


async def set_mute(tx: Tx, account_id: int, target_id: int, on: bool, notifications: bool = True,
                   expires_at: str | None = None) -> bool:
    if on:
        await tx.execute(
            "INSERT INTO mutes (id, account_id, target_account_id, notifications, expires_at, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, target_account_id)"
            " DO UPDATE SET notifications = excluded.notifications, expires_at = excluded.expires_at",
            (new_id(), account_id, target_id, int(notifications), expires_at, now_iso()))
        return True
    return bool(await tx.execute("DELETE FROM mutes WHERE account_id = ? AND target_account_id = ?",
                                 (account_id, target_id)))


async def blocked_either_way(db: Reader, a: int, b: int) -> bool:
    return await db.fetchval(
        "SELECT 1 FROM blocks WHERE (account_id = ?1 AND target_account_id = ?2)"
        " OR (account_id = ?2 AND target_account_id = ?1)", (a, b)) is not None


async def followed_and_blocked(db: Reader, viewer_id: int, target_ids: Iterable[int]) -> tuple[set[int], set[int]]:
    """Of these accounts, those the viewer follows and those blocked by or blocking the viewer: what
    deciding a post's visibility asks, in three index look-ups per account (`relationships` does eight)."""
    targets = list(dict.fromkeys(target_ids))
    if not targets:
        return set(), set()
    listed = ",".join(f"?{i + 2}" for i in range(len(targets)))
    rows = await db.fetchall(
        f"SELECT 1, target_account_id FROM follows WHERE account_id = ?1 AND target_account_id IN ({listed})"
        f" UNION ALL SELECT 0, target_account_id FROM blocks WHERE account_id = ?1 AND target_account_id IN ({listed})"
        f" UNION ALL SELECT 0, account_id FROM blocks WHERE target_account_id = ?1 AND account_id IN ({listed})",
        [viewer_id, *targets])
    followed = {target for following, target in rows if following}
    return followed, {target for following, target in rows if not following}


async def hidden_account_ids(db: Reader, viewer_id: int) -> set[int]:
    """Accounts whose posts the viewer never sees: blocked, blocking the viewer, muted, or on a
    domain the viewer blocked."""
    return (await hidden_and_blocked(db, viewer_id))[0]


async def hidden_and_blocked(db: Reader, viewer_id: int) -> tuple[set[int], set[int]]:
    """`hidden_account_ids`, and of those the accounts a block stands between the viewer and (either
    way): what `followed_and_blocked` answers of its second half."""
    rows = await db.fetchall(
        "SELECT 1, target_account_id FROM blocks WHERE account_id = ?1"
        " UNION ALL SELECT 1, account_id FROM blocks WHERE target_account_id = ?1"
        " UNION ALL SELECT 0, target_account_id FROM mutes WHERE account_id = ?1"
        "   AND (expires_at IS NULL OR expires_at > ?2)"
        " UNION ALL SELECT 0, a.id FROM account_domain_blocks d JOIN accounts a ON a.domain = d.domain"
        "   WHERE d.account_id = ?1", (viewer_id, now_iso()))
    return {r[1] for r in rows}, {r[1] for r in rows if r[0]}


async def followed_among(db: Reader, viewer_id: int, target_ids: Iterable[int]) -> set[int]:
    """Of these accounts, those the viewer follows (`followed_and_blocked`'s first half)."""
    targets = list(dict.fromkeys(target_ids))
    if not targets:
        return set()
    rows = await db.fetchall(
        f"SELECT target_account_id FROM follows WHERE account_id = ? AND target_account_id IN ({marks(len(targets))})",
        [viewer_id, *targets])
    return {r[0] for r in rows}


async def notification_muted_ids(db: Reader, viewer_id: int) -> set[int]:
    rows = await db.fetchall(
        "SELECT target_account_id FROM blocks WHERE account_id = ?1"
        " UNION SELECT target_account_id FROM mutes WHERE account_id = ?1 AND notifications = 1"
        "   AND (expires_at IS NULL OR expires_at > ?2)"
        " UNION SELECT a.id FROM account_domain_blocks d JOIN accounts a ON a.domain = d.domain"
        "   WHERE d.account_id = ?1", (viewer_id, now_iso()))
    return {r[0] for r in rows}


async def relationships(db: Reader, viewer_id: int, target_ids: Iterable[int]) -> dict[int, Relationship]:
    targets = list(dict.fromkeys(target_ids))
    out = {t: Relationship() for t in targets}
    if not targets:
        return out
    # Numbered placeholders: ?1 is the viewer, ?2.. the ids, reused by every branch.
    marks = ",".join(f"?{i + 2}" for i in range(len(targets)))
    rows = await db.fetchall(
        f"SELECT 'following', target_account_id, show_reblogs, notify FROM follows WHERE account_id = ?1 AND target_account_id IN ({marks})"
        f" UNION ALL SELECT 'followed_by', account_id, 0, 0 FROM follows WHERE target_account_id = ?1 AND account_id IN ({marks})"
        f" UNION ALL SELECT 'requested', target_account_id, 0, 0 FROM follow_requests WHERE account_id = ?1 AND target_account_id IN ({marks})"
        f" UNION ALL SELECT 'requested_by', account_id, 0, 0 FROM follow_requests WHERE target_account_id = ?1 AND account_id IN ({marks})"
        f" UNION ALL SELECT 'blocking', target_account_id, 0, 0 FROM blocks WHERE account_id = ?1 AND target_account_id IN ({marks})"
        f" UNION ALL SELECT 'blocked_by', account_id, 0, 0 FROM blocks WHERE target_account_id = ?1 AND account_id IN ({marks})"
        f" UNION ALL SELECT 'muting', target_account_id, notifications, 0 FROM mutes WHERE account_id = ?1 AND target_account_id IN ({marks})"
        f" UNION ALL SELECT 'domain_blocking', a.id, 0, 0 FROM accounts a JOIN account_domain_blocks d"
        f"   ON d.domain = a.domain AND d.account_id = ?1 WHERE a.id IN ({marks})",
        [viewer_id, *targets])
    for kind, target, a, b in rows:
        rel = out[target]
        setattr(rel, kind, True)
        if kind == "following":
            rel.showing_reblogs, rel.notifying = bool(a), bool(b)
        elif kind == "muting":
            rel.muting_notifications = bool(a)
    return out


async def list_targets(db: Reader, table: str, account_id: int, max_id: int | None, since_id: int | None,
                       limit: int) -> list[tuple[int, int]]:
    assert table in ("blocks", "mutes")
    sql = f"SELECT id, target_account_id FROM {table} WHERE account_id = ?"
    cond, window_params, _order = window("id", Page(max_id=max_id, since_id=since_id))
    sql += cond
    params: list[Any] = [account_id, *window_params]
    params.append(limit)
    return [(r[0], r[1]) for r in await db.fetchall(sql + " ORDER BY id DESC LIMIT ?", params)]


async def notify_follower_ids(db: Reader, target_id: int) -> list[int]:
    """Followers who asked to be notified of the target's new posts."""
    return [r[0] for r in await db.fetchall("SELECT account_id FROM follows WHERE target_account_id = ? AND notify = 1",
                                            (target_id,))]


async def reblog_follower_ids(db: Reader, target_id: int) -> set[int]:
    """Followers who want to see the target's boosts."""
    return {r[0] for r in await db.fetchall(
        "SELECT account_id FROM follows WHERE target_account_id = ? AND show_reblogs = 1", (target_id,))}


async def block_uri(db: Reader, account_id: int, target_id: int) -> str | None:
    return await db.fetchval("SELECT uri FROM blocks WHERE account_id = ? AND target_account_id = ?",
                             (account_id, target_id))

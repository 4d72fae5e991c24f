"""Groups: the group accounts hosted here, their roles and bans, and the posts in any group (local or
remote) with the group's share of each."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from server.domain.groups import (
    GroupFederation,
    GroupKind,
    GroupPost,
    GroupRole,
    HeldPost,
    LocalGroup,
    NonMemberPosts,
)
from server.domain.records import Account
from server.ids import new_id, now_iso
from server.ports import Reader, Tx
from server.storage.accounts import ACCOUNT_COLS, _to_account
from server.storage.paging import Page, newest_first, window

GROUP_COLS = "account_id, kind, federation, partners, rules, archived_at, created_at, non_member_posts"
POST_COLS = "group_id, status_id, share_id, top_level, pinned, removed_at, created_at"


def _group(row: Any) -> LocalGroup:
    return LocalGroup(account_id=row[0], kind=GroupKind(row[1]), federation=GroupFederation(row[2]),
                      partners=list(msgspec.json.decode(row[3] or "[]")), rules=row[4], archived_at=row[5],
                      created_at=row[6], non_member_posts=NonMemberPosts(row[7]))


def _post(row: Any) -> GroupPost:
    return GroupPost(group_id=row[0], status_id=row[1], share_id=row[2], top_level=bool(row[3]), pinned=bool(row[4]),
                     removed_at=row[5], created_at=row[6])


# -- the group accounts hosted here --------------------------------------------------------------------

async def insert(tx: Tx, *, username: str, display_name: str, note: str, note_source: str, group: LocalGroup,
                 base_url: str) -> int:
    """The Group actor (an account without a user) and its settings."""
    account_id = group.account_id
    now = now_iso()
    uri = f"{base_url}/users/{username}"
    await tx.execute(
        "INSERT INTO accounts (id, username, domain, display_name, note, note_source, locked, discoverable,"
        " actor_type, uri, url, inbox_url, shared_inbox_url, outbox_url, followers_url, following_url,"
        " featured_url, key_id, created_at, updated_at)"
        " VALUES (?, ?, '', ?, ?, ?, ?, 1, 'Group', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (account_id, username, display_name, note, note_source, int(group.locked), uri, f"{base_url}/@{username}",
         f"{uri}/inbox", f"{base_url}/inbox", f"{uri}/outbox", f"{uri}/followers", f"{uri}/following",
         f"{uri}/collections/featured", f"{uri}#main-key", now, now))
    await tx.execute(
        f"INSERT INTO local_groups ({GROUP_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (account_id, group.kind, group.federation, msgspec.json.encode(group.partners).decode(), group.rules,
         group.archived_at, group.created_at, group.non_member_posts))
    return account_id


async def get(db: Reader, account_id: int) -> LocalGroup | None:
    row = await db.fetchone(f"SELECT {GROUP_COLS} FROM local_groups WHERE account_id = ?", (account_id,))
    return None if row is None else _group(row)


async def get_many(db: Reader, ids: Iterable[int]) -> dict[int, LocalGroup]:
    ids = list(set(ids))
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = await db.fetchall(f"SELECT {GROUP_COLS} FROM local_groups WHERE account_id IN ({marks})", ids)
    return {row[0]: _group(row) for row in rows}


async def update(tx: Tx, account_id: int, changes: dict[str, Any]) -> None:
    allowed = {"kind", "federation", "partners", "rules", "archived_at", "non_member_posts"}
    assert set(changes) <= allowed, set(changes) - allowed
    if "partners" in changes:
        changes["partners"] = msgspec.json.encode(changes["partners"]).decode()
    if changes:
        assignments = ", ".join(f"{name} = ?" for name in changes)
        await tx.execute(f"UPDATE local_groups SET {assignments} WHERE account_id = ?", (*changes.values(), account_id))


async def set_locked(tx: Tx, account_id: int, locked: bool) -> None:
    await tx.execute("UPDATE accounts SET locked = ?, updated_at = ? WHERE id = ?", (int(locked), now_iso(), account_id))


async def browse(db: Reader, query: str, limit: int, offset: int, *, local_only: bool = False) -> list[Account]:
    """Discoverable groups (hosted here or known from elsewhere) whose name or description matches,
    the most followed first."""
    like = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    where = "" if not local_only else " AND domain = ''"
    rows = await db.fetchall(
        f"SELECT {ACCOUNT_COLS} FROM accounts WHERE actor_type = 'Group' AND suspended = 0 AND deleted_at IS NULL"
        " AND discoverable = 1 AND (lower(username) LIKE lower(?) ESCAPE '\\' OR lower(display_name) LIKE lower(?)"
        f" ESCAPE '\\' OR lower(note) LIKE lower(?) ESCAPE '\\'){where}"
        " ORDER BY followers_count DESC, id LIMIT ? OFFSET ?", (like, like, like, limit, offset))
    return [_to_account(r) for r in rows]


async def joined(db: Reader, account_id: int) -> list[Account]:
    """Groups the account is a member of (follows), newest membership first."""
    rows = await db.fetchall(
        f"SELECT {', '.join('a.' + c.strip() for c in ACCOUNT_COLS.split(','))} FROM follows f"
        " JOIN accounts a ON a.id = f.target_account_id"
        " WHERE f.account_id = ? AND a.actor_type = 'Group' AND a.deleted_at IS NULL ORDER BY f.id DESC LIMIT 200",
        (account_id,))
    return [_to_account(r) for r in rows]


async def colleague_groups(db: Reader, colleague_ids: list[int], exclude_member: int, limit: int) -> list[int]:
    """Groups most joined by the given colleagues that `exclude_member` has not joined yet."""
    if not colleague_ids:
        return []
    marks = ",".join("?" * len(colleague_ids))
    rows = await db.fetchall(
        "SELECT f.target_account_id, count(*) AS n FROM follows f JOIN accounts a ON a.id = f.target_account_id"
        f" WHERE f.account_id IN ({marks}) AND a.actor_type = 'Group' AND a.discoverable = 1"
        " AND a.deleted_at IS NULL AND a.suspended = 0"
        " AND NOT EXISTS (SELECT 1 FROM follows m WHERE m.account_id = ? AND m.target_account_id = f.target_account_id)"
        " AND NOT EXISTS (SELECT 1 FROM follow_requests r WHERE r.account_id = ?"
        "   AND r.target_account_id = f.target_account_id)"
        " GROUP BY f.target_account_id ORDER BY n DESC, f.target_account_id LIMIT ?",
        (*colleague_ids, exclude_member, exclude_member, limit))
    return [r[0] for r in rows]


# -- roles and bans ------------------------------------------------------------------------------------

async def set_role(tx: Tx, group_id: int, account_id: int, role: GroupRole) -> None:
    if role == GroupRole.USER:
        await tx.execute("DELETE FROM group_roles WHERE group_id = ? AND account_id = ?", (group_id, account_id))
        return
    await tx.execute(
        "INSERT INTO group_roles (group_id, account_id, role, created_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (group_id, account_id) DO UPDATE SET role = excluded.role",
        (group_id, account_id, role, now_iso()))


async def role_of(db: Reader, group_id: int, account_id: int) -> GroupRole:
    value = await db.fetchval("SELECT role FROM group_roles WHERE group_id = ? AND account_id = ?",
                              (group_id, account_id))
    return GroupRole(value) if value else GroupRole.USER


async def roles(db: Reader, group_id: int) -> dict[int, GroupRole]:
    rows = await db.fetchall("SELECT account_id, role FROM group_roles WHERE group_id = ?", (group_id,))
    return {r[0]: GroupRole(r[1]) for r in rows}


async def roles_of_account(db: Reader, account_id: int, group_ids: list[int]) -> dict[int, GroupRole]:
    if not group_ids:
        return {}
    marks = ",".join("?" * len(group_ids))
    rows = await db.fetchall(f"SELECT group_id, role FROM group_roles WHERE account_id = ? AND group_id IN ({marks})",
                             (account_id, *group_ids))
    return {r[0]: GroupRole(r[1]) for r in rows}


async def owner_id(db: Reader, group_id: int) -> int | None:
    return await db.fetchval("SELECT account_id FROM group_roles WHERE group_id = ? AND role = 'owner'", (group_id,))


async def set_ban(tx: Tx, group_id: int, account_id: int, on: bool) -> bool:
    if on:
        return bool(await tx.execute(
            "INSERT INTO group_bans (group_id, account_id, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT (group_id, account_id) DO NOTHING", (group_id, account_id, now_iso())))
    return bool(await tx.execute("DELETE FROM group_bans WHERE group_id = ? AND account_id = ?", (group_id, account_id)))


async def is_banned(db: Reader, group_id: int, account_id: int) -> bool:
    return await db.fetchval("SELECT 1 FROM group_bans WHERE group_id = ? AND account_id = ?",
                             (group_id, account_id)) is not None


async def banned_ids(db: Reader, group_id: int) -> list[int]:
    rows = await db.fetchall("SELECT account_id FROM group_bans WHERE group_id = ? ORDER BY created_at DESC",
                             (group_id,))
    return [r[0] for r in rows]


async def members_page(db: Reader, group_id: int, role: GroupRole | None, page: Page) -> list[tuple[int, int]]:
    """(follow row id, member id) of a group's members, newest first; `role` narrows to owners, admins
    or plain members."""
    cond, params, order = window("f.id", page)
    sql = "SELECT f.id, f.account_id FROM follows f WHERE f.target_account_id = ?" + cond
    args: list[Any] = [group_id, *params]
    if role == GroupRole.USER:
        sql += " AND NOT EXISTS (SELECT 1 FROM group_roles r WHERE r.group_id = f.target_account_id" \
               " AND r.account_id = f.account_id)"
    elif role is not None:
        sql += " AND EXISTS (SELECT 1 FROM group_roles r WHERE r.group_id = f.target_account_id" \
               " AND r.account_id = f.account_id AND r.role = ?)"
        args.append(role)
    rows = await db.fetchall(f"{sql} ORDER BY {order} LIMIT ?", (*args, page.limit))
    return newest_first([(r[0], r[1]) for r in rows], page)


# -- posts in groups -----------------------------------------------------------------------------------

async def insert_post(tx: Tx, post: GroupPost, activity: str | None = None) -> bool:
    """Record a post in a group; False when it was recorded before (a repeated event)."""
    return bool(await tx.execute(
        f"INSERT INTO group_posts ({POST_COLS}, activity) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (group_id, status_id) DO NOTHING",
        (post.group_id, post.status_id, post.share_id, int(post.top_level), int(post.pinned), post.removed_at,
         post.created_at, activity)))


async def post(db: Reader, group_id: int, status_id: int) -> GroupPost | None:
    row = await db.fetchone(f"SELECT {POST_COLS} FROM group_posts WHERE group_id = ? AND status_id = ?",
                            (group_id, status_id))
    return None if row is None else _post(row)


async def posts_of(db: Reader, status_id: int) -> list[GroupPost]:
    """The groups a status was posted in (usually one)."""
    rows = await db.fetchall(f"SELECT {POST_COLS} FROM group_posts WHERE status_id = ?", (status_id,))
    return [_post(r) for r in rows]


async def post_activity(db: Reader, group_id: int, status_id: int) -> str | None:
    return await db.fetchval("SELECT activity FROM group_posts WHERE group_id = ? AND status_id = ?",
                             (group_id, status_id))


async def mark_removed(tx: Tx, group_id: int, status_id: int) -> bool:
    return bool(await tx.execute(
        "UPDATE group_posts SET removed_at = ?, pinned = 0 WHERE group_id = ? AND status_id = ? AND removed_at IS NULL",
        (now_iso(), group_id, status_id)))


async def set_pinned(tx: Tx, group_id: int, status_id: int, on: bool) -> bool:
    return bool(await tx.execute("UPDATE group_posts SET pinned = ? WHERE group_id = ? AND status_id = ?"
                                 " AND removed_at IS NULL", (int(on), group_id, status_id)))


async def timeline(db: Reader, group_id: int, page: Page, *, pinned: bool = False) -> list[int]:
    """Ids of the top-level posts in a group, newest first (or only the pinned ones)."""
    cond, params, order = window("p.status_id", page)
    extra = " AND p.pinned = 1" if pinned else ""
    rows = await db.fetchall(
        "SELECT p.status_id FROM group_posts p JOIN statuses s ON s.id = p.status_id"
        " WHERE p.group_id = ? AND p.top_level = 1 AND p.removed_at IS NULL AND s.deleted_at IS NULL"
        f"{extra}{cond} ORDER BY {order} LIMIT ?", (group_id, *params, page.limit))
    return newest_first([r[0] for r in rows], page, key=lambda r: r)


async def visible_through_groups(db: Reader, viewer_id: int, status_ids: list[int]) -> set[int]:
    """Of `status_ids`, those posted in a group the viewer belongs to (follows, or moderates)."""
    if not status_ids:
        return set()
    marks = ",".join("?" * len(status_ids))
    rows = await db.fetchall(
        f"SELECT p.status_id FROM group_posts p WHERE p.status_id IN ({marks}) AND p.removed_at IS NULL AND ("
        " EXISTS (SELECT 1 FROM follows f WHERE f.account_id = ? AND f.target_account_id = p.group_id)"
        " OR EXISTS (SELECT 1 FROM group_roles r WHERE r.account_id = ? AND r.group_id = p.group_id))",
        (*status_ids, viewer_id, viewer_id))
    return {r[0] for r in rows}


# -- posts held for the moderators (non-members' posts to a group that holds them) --------------------

HELD_COLS = "group_id, status_id, author_id, top_level, created_at"


def _held(row: Any) -> HeldPost:
    return HeldPost(group_id=row[0], status_id=row[1], author_id=row[2], top_level=bool(row[3]), created_at=row[4])


async def hold_post(tx: Tx, held: HeldPost) -> bool:
    """Keep a post for the moderators; False when it was held before (a repeated event)."""
    return bool(await tx.execute(
        f"INSERT INTO group_held_posts ({HELD_COLS}) VALUES (?, ?, ?, ?, ?) ON CONFLICT (group_id, status_id) DO NOTHING",
        (held.group_id, held.status_id, held.author_id, int(held.top_level), held.created_at)))


async def held_post(db: Reader, group_id: int, status_id: int) -> HeldPost | None:
    row = await db.fetchone(f"SELECT {HELD_COLS} FROM group_held_posts WHERE group_id = ? AND status_id = ?",
                            (group_id, status_id))
    return None if row is None else _held(row)


async def held_posts(db: Reader, group_id: int, limit: int) -> list[HeldPost]:
    """The posts waiting for a group's moderators, oldest first."""
    rows = await db.fetchall(
        f"SELECT {HELD_COLS} FROM group_held_posts WHERE group_id = ? ORDER BY created_at, status_id LIMIT ?",
        (group_id, limit))
    return [_held(r) for r in rows]


async def release_held(tx: Tx, group_id: int, status_id: int) -> bool:
    """Take a post off the held list; False when it was not there (answered before)."""
    return bool(await tx.execute("DELETE FROM group_held_posts WHERE group_id = ? AND status_id = ?",
                                 (group_id, status_id)))


async def share_of(db: Reader, share_id: int) -> GroupPost | None:
    row = await db.fetchone(f"SELECT {POST_COLS} FROM group_posts WHERE share_id = ?", (share_id,))
    return None if row is None else _post(row)


async def inbound_create(db: Reader, actor_uri: str, object_uri: str) -> str | None:
    """The Create of `object_uri` as it arrived from `actor_uri` (the inbox keeps what it received)."""
    needle = f'%"{object_uri}"%'
    return await db.fetchval(
        "SELECT body FROM inbox_activities WHERE actor_uri = ? AND body LIKE ? ORDER BY id DESC LIMIT 1",
        (actor_uri, needle))


def new_group_id() -> int:
    return new_id()

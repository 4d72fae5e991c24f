"""Statuses, their edits, mentions, tags, and the per-account interactions on them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from server.domain.enums import Visibility
from server.domain.records import Status, StatusEdit, columns
from server.ids import new_id, now_iso
from server.ports import Reader, Tx
from server.storage import viewers as viewer_store
from server.storage.dialect import marks
from server.storage.paging import Page, window

STATUS_COLS = columns(Status)
STATUS_COLS_S = columns(Status, "s")


# The stored text → the member: a dict look-up, where calling the Enum costs a microsecond or more a
# row, which a page of statuses read afresh pays forty times.
VISIBILITY_OF = {v.value: v for v in Visibility}


def row_to_status(row: Any) -> Status:
    """A status from a row of `{STATUS_COLS}`: the fields in order (server.domain.records)."""
    status = Status(*row)
    status.visibility = VISIBILITY_OF[status.visibility]
    return status


async def insert(tx: Tx, status: Status) -> None:
    values = [getattr(status, name) for name in Status.__struct_fields__]
    await tx.execute(f"INSERT INTO statuses ({STATUS_COLS}) VALUES ({marks(len(values))})", values)


async def get(db: Reader, status_id: int) -> Status | None:
    row = await db.fetchone(f"SELECT {STATUS_COLS} FROM statuses WHERE id = ?", (status_id,))
    return None if row is None else row_to_status(row)


async def by_uri(db: Reader, uri: str) -> Status | None:
    row = await db.fetchone(f"SELECT {STATUS_COLS} FROM statuses WHERE uri = ?", (uri,))
    return None if row is None else row_to_status(row)


async def existing_uris(db: Reader, uris: list[str]) -> set[str]:
    """Those of these URIs that a stored status has."""
    rows = await db.fetchall(f"SELECT uri FROM statuses WHERE uri IN ({marks(len(uris))})", uris) if uris else []
    return {r[0] for r in rows}


async def get_many(db: Reader, ids: Iterable[int]) -> dict[int, Status]:
    ids = list(set(ids))
    if not ids:
        return {}
    rows = await db.fetchall(f"SELECT {STATUS_COLS} FROM statuses WHERE id IN ({marks(len(ids))})", ids)
    return {row["id"]: row_to_status(row) for row in rows}


def _versioned_status(row: Any) -> tuple[int, Status]:
    """(version, status) from a row of `version, {STATUS_COLS}`: the fields in order."""
    values = tuple(row)
    status = Status(*values[1:])
    status.visibility = VISIBILITY_OF[status.visibility]
    return values[0], status


async def get_many_versioned(db: Reader, ids: Iterable[int]) -> dict[int, tuple[int, Status]]:
    """status id → (its version, the status), read in one statement so the record is at least as new as
    the version (see schema/sqlite/0037_render_versions.sql)."""
    ids = list(set(ids))
    if not ids:
        return {}
    rows = await db.fetchall(f"SELECT version, {STATUS_COLS} FROM statuses WHERE id IN ({marks(len(ids))})", ids)
    return {row[1]: _versioned_status(row) for row in rows}


async def reblog_by(db: Reader, account_id: int, status_id: int) -> Status | None:
    row = await db.fetchone(
        f"SELECT {STATUS_COLS} FROM statuses WHERE account_id = ? AND reblog_of_id = ? AND deleted_at IS NULL",
        (account_id, status_id))
    return None if row is None else row_to_status(row)


async def update_content(tx: Tx, status_id: int, *, content: str, source_text: str, spoiler_text: str,
                         sensitive: bool, language: str | None, edited_at: str) -> None:
    await tx.execute(
        "UPDATE statuses SET content = ?, source_text = ?, spoiler_text = ?, sensitive = ?, language = ?,"
        " edited_at = ? WHERE id = ?",
        (content, source_text, spoiler_text, int(sensitive), language, edited_at, status_id))


async def mark_deleted(tx: Tx, status_id: int) -> None:
    await tx.execute("UPDATE statuses SET deleted_at = ? WHERE id = ?", (now_iso(), status_id))
    await tx.execute("DELETE FROM home_feed WHERE status_id = ?", (status_id,))
    await tx.execute("DELETE FROM pins WHERE status_id = ?", (status_id,))


async def adjust_counts(tx: Tx, status_id: int, *, replies: int = 0, reblogs: int = 0, favourites: int = 0) -> None:
    at_least_0 = tx.dialect.greatest
    await tx.execute(
        f"UPDATE statuses SET replies_count = {at_least_0('0', 'replies_count + ?')},"
        f" reblogs_count = {at_least_0('0', 'reblogs_count + ?')},"
        f" favourites_count = {at_least_0('0', 'favourites_count + ?')} WHERE id = ?",
        (replies, reblogs, favourites, status_id))


# -- edits -------------------------------------------------------------------------------------

async def insert_edit(tx: Tx, status_id: int, content: str, spoiler_text: str, sensitive: bool,
                      created_at: str) -> None:
    await tx.execute(
        "INSERT INTO status_edits (id, status_id, content, spoiler_text, sensitive, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (new_id(), status_id, content, spoiler_text, int(sensitive), created_at))


async def edits(db: Reader, status_id: int) -> list[StatusEdit]:
    rows = await db.fetchall(f"SELECT {columns(StatusEdit)} FROM status_edits WHERE status_id = ? ORDER BY id",
                             (status_id,))
    return [StatusEdit(**dict(r)) for r in rows]


# -- mentions and tags --------------------------------------------------------------------------

async def insert_mentions(tx: Tx, status_id: int, account_ids: Iterable[int]) -> None:
    await tx.executemany("INSERT INTO mentions (status_id, account_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                         [(status_id, a) for a in account_ids])


async def replace_mentions(tx: Tx, status_id: int, account_ids: Iterable[int]) -> None:
    await tx.execute("DELETE FROM mentions WHERE status_id = ?", (status_id,))
    await insert_mentions(tx, status_id, account_ids)


async def mentions_for(db: Reader, status_ids: list[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    if status_ids:
        rows = await db.fetchall(
            f"SELECT status_id, account_id FROM mentions WHERE status_id IN ({marks(len(status_ids))})", status_ids)
        for r in rows:
            out.setdefault(r[0], []).append(r[1])
    return out


async def mentioned_ids(db: Reader, status_id: int) -> list[int]:
    return [r[0] for r in await db.fetchall("SELECT account_id FROM mentions WHERE status_id = ?", (status_id,))]


async def tag_ids(tx: Tx, names: Iterable[str]) -> list[int]:
    """The ids of these hashtags, those new made (most exist already: one read each)."""
    ids = []
    for name in names:
        tag_id = await tx.fetchval("SELECT id FROM tags WHERE lower(name) = lower(?)", (name,))
        if tag_id is None:
            await tx.execute("INSERT INTO tags (id, name) VALUES (?, ?) ON CONFLICT DO NOTHING", (new_id(), name))
            tag_id = await tx.fetchval("SELECT id FROM tags WHERE lower(name) = lower(?)", (name,))
        ids.append(tag_id)
    return ids


async def insert_tags(tx: Tx, status_id: int, names: Iterable[str]) -> None:
    ids = await tag_ids(tx, names)
    await tx.executemany("INSERT INTO status_tags (tag_id, status_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                         [(t, status_id) for t in ids])


async def replace_tags(tx: Tx, status_id: int, names: Iterable[str]) -> None:
    await tx.execute("DELETE FROM status_tags WHERE status_id = ?", (status_id,))
    await insert_tags(tx, status_id, names)


async def tags_for(db: Reader, status_ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    if status_ids:
        rows = await db.fetchall(
            "SELECT st.status_id, t.name FROM status_tags st JOIN tags t ON t.id = st.tag_id"
            f" WHERE st.status_id IN ({marks(len(status_ids))})", status_ids)
        for r in rows:
            out.setdefault(r[0], []).append(r[1])
    return out


async def tag_id(db: Reader, name: str) -> int | None:
    return await db.fetchval("SELECT id FROM tags WHERE lower(name) = lower(?)", (name,))


# -- favourites, bookmarks, pins ------------------------------------------------------------------

async def add_favourite(tx: Tx, account_id: int, status_id: int, uri: str | None = None) -> bool:
    changed = await tx.execute(
        "INSERT INTO favourites (id, account_id, status_id, uri, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (new_id(), account_id, status_id, uri, now_iso()))
    if changed:
        await adjust_counts(tx, status_id, favourites=1)
    return bool(changed)


async def has_favourite(db: Reader, account_id: int, status_id: int) -> bool:
    return await db.fetchval("SELECT 1 FROM favourites WHERE account_id = ? AND status_id = ?",
                             (account_id, status_id)) is not None


async def remove_favourite(tx: Tx, account_id: int, status_id: int) -> bool:
    changed = await tx.execute("DELETE FROM favourites WHERE account_id = ? AND status_id = ?", (account_id, status_id))
    if changed:
        await adjust_counts(tx, status_id, favourites=-1)
    return bool(changed)


async def set_flag(tx: Tx, table: str, account_id: int, status_id: int, on: bool) -> bool:
    assert table in ("bookmarks", "pins")
    if on:
        return bool(await tx.execute(f"INSERT INTO {table} (id, account_id, status_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                                     (new_id(), account_id, status_id)))
    return bool(await tx.execute(f"DELETE FROM {table} WHERE account_id = ? AND status_id = ?", (account_id, status_id)))


async def count_pins(db: Reader, account_id: int) -> int:
    return await db.fetchval("SELECT count(*) FROM pins WHERE account_id = ?", (account_id,)) or 0


# -- threads -------------------------------------------------------------------------------------

THREAD_MEMBERS_READ = 4000


async def thread_members(db: Reader, thread_id: int) -> list[Status]:
    rows = await db.fetchall(
        f"SELECT {STATUS_COLS} FROM statuses WHERE thread_id = ? AND deleted_at IS NULL AND reblog_of_id IS NULL"
        " ORDER BY id LIMIT ?", (thread_id, THREAD_MEMBERS_READ))
    return [row_to_status(r) for r in rows]


async def thread_ids(db: Reader, thread_id: int, viewer_id: int | None = None) -> tuple[list[int], int | None]:
    """The ids of the statuses in a thread (deleted ones and boosts among them: the caller has their
    records and leaves those out), from the thread's index alone; and `viewer_id`'s version, read in
    the same query (None when not asked for or when there are none)."""
    version, params = viewer_store.version_column(viewer_id, [thread_id, THREAD_MEMBERS_READ])
    rows = await db.fetchall(f"SELECT id{version} FROM statuses WHERE thread_id = ? ORDER BY id LIMIT ?", params)
    return viewer_store.ids_and_version(rows, viewer_id)


async def interacting_accounts(db: Reader, kind: str, status_id: int, max_id: int | None, since_id: int | None,
                               limit: int) -> list[tuple[int, int]]:
    """(row id, account id) of favouriters or rebloggers, newest first, for pagination."""
    if kind == "favourites":
        sql = "SELECT id, account_id FROM favourites WHERE status_id = ?"
    else:
        sql = "SELECT id, account_id FROM statuses WHERE reblog_of_id = ? AND deleted_at IS NULL"
    cond, window_params, _order = window("id", Page(max_id=max_id, since_id=since_id))
    sql += cond
    params: list[Any] = [status_id, *window_params]
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(limit)
    return [(r[0], r[1]) for r in await db.fetchall(sql, params)]


async def idempotent_status(db: Reader, account_id: int, key: str, since: float) -> int | None:
    return await db.fetchval(
        "SELECT status_id FROM idempotency_keys WHERE account_id = ? AND key = ? AND created_at > ?",
        (account_id, key, since))


async def remember_idempotency(tx: Tx, account_id: int, key: str, status_id: int, now: float) -> None:
    await tx.execute("DELETE FROM idempotency_keys WHERE created_at < ?", (now - 3600,))
    await tx.execute("INSERT INTO idempotency_keys (account_id, key, status_id, created_at) VALUES (?, ?, ?, ?)"
                     " ON CONFLICT (account_id, key) DO UPDATE SET status_id = excluded.status_id,"
                     " created_at = excluded.created_at", (account_id, key, status_id, now))


async def booster_ids(db: Reader, status_id: int) -> list[int]:
    rows = await db.fetchall("SELECT DISTINCT account_id FROM statuses WHERE reblog_of_id = ? AND deleted_at IS NULL",
                             (status_id,))
    return [r[0] for r in rows]


async def detach_media(tx: Tx, status_id: int) -> None:
    await tx.execute("UPDATE media_attachments SET status_id = NULL WHERE status_id = ?", (status_id,))


async def media_rows(db: Reader, status_id: int) -> list[Any]:
    return await db.fetchall("SELECT * FROM media_attachments WHERE status_id = ? ORDER BY position", (status_id,))


async def public_ids_of(db: Reader, account_id: int, limit: int, max_id: int | None = None,
                        only_public: bool = False) -> list[int]:
    """An account's federatable posts (public and unlisted, or public only; never local-only, no boosts),
    newest first: for outboxes and profile pages."""
    visibilities = "('public')" if only_public else "('public', 'unlisted')"
    rows = await db.fetchall(
        f"SELECT id FROM statuses WHERE account_id = ? AND visibility IN {visibilities} AND deleted_at IS NULL"
        " AND local_only = 0 AND reblog_of_id IS NULL AND id < ? ORDER BY id DESC LIMIT ?",
        (account_id, max_id or 2**63 - 1, limit))
    return [r[0] for r in rows]


async def public_replies(db: Reader, status_id: int, after: int | None, limit: int) -> list[Status]:
    rows = await db.fetchall(
        f"SELECT {STATUS_COLS} FROM statuses WHERE in_reply_to_id = ? AND visibility IN ('public', 'unlisted')"
        " AND deleted_at IS NULL AND local_only = 0 AND id > ? ORDER BY id LIMIT ?", (status_id, after or 0, limit))
    return [row_to_status(r) for r in rows]


async def pinned_ids(db: Reader, account_id: int) -> list[int]:
    return [r[0] for r in await db.fetchall("SELECT status_id FROM pins WHERE account_id = ? ORDER BY id DESC",
                                            (account_id,))]


async def live_reblog_ids(db: Reader, status_id: int) -> list[int]:
    return [r[0] for r in await db.fetchall("SELECT id FROM statuses WHERE reblog_of_id = ? AND deleted_at IS NULL",
                                            (status_id,))]


async def media_rows_for(db: Reader, status_ids: list[int]) -> dict[int, list[Any]]:
    """status id → its media rows in position order, for many statuses in one query."""
    out: dict[int, list[Any]] = {}
    if status_ids:
        rows = await db.fetchall(f"SELECT * FROM media_attachments WHERE status_id IN ({marks(len(status_ids))})"
                                 " ORDER BY status_id, position", status_ids)
        for r in rows:
            out.setdefault(r["status_id"], []).append(r)
    return out


async def public_replies_for(db: Reader, status_ids: list[int], limit: int) -> dict[int, list[Status]]:
    """status id → its first `limit` public replies (oldest first), for many statuses in one query."""
    out: dict[int, list[Status]] = {}
    if status_ids:
        rows = await db.fetchall(
            f"SELECT {STATUS_COLS} FROM (SELECT *, row_number() OVER (PARTITION BY in_reply_to_id ORDER BY id) AS n"
            f" FROM statuses WHERE in_reply_to_id IN ({marks(len(status_ids))})"
            " AND visibility IN ('public', 'unlisted') AND deleted_at IS NULL AND local_only = 0) AS r"
            " WHERE n <= ? ORDER BY in_reply_to_id, id", [*status_ids, limit])
        for r in rows:
            status = row_to_status(r)
            out.setdefault(status.in_reply_to_id or 0, []).append(status)
    return out

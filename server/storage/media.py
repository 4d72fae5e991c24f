"""Media attachments: uploaded files' rows, attaching them to statuses, and finding the ones to purge."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from server.ports import Reader, Tx
from server.storage.dialect import marks


async def insert(tx: Tx, *, media_id: int, account_id: int, kind: str, mime_type: str, file_path: str,
                 preview_path: str, description: str | None, focus: tuple[float, float], blurhash: str,
                 meta: str, size: int, created_at: str) -> None:
    await tx.execute(
        "INSERT INTO media_attachments (id, account_id, status_id, type, mime_type, file_path, preview_path,"
        " description, focus_x, focus_y, blurhash, meta, size, processing, created_at)"
        " VALUES (?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
        (media_id, account_id, kind, mime_type, file_path, preview_path, description, focus[0], focus[1],
         blurhash, meta, size, created_at))


async def get(db: Reader, media_id: int) -> Any:
    return await db.fetchone("SELECT * FROM media_attachments WHERE id = ?", (media_id,))


async def for_statuses(db: Reader, status_ids: list[int]) -> list[Any]:
    """The attachments of these statuses, in their order on each status."""
    if not status_ids:
        return []
    return await db.fetchall(
        f"SELECT * FROM media_attachments WHERE status_id IN ({marks(len(status_ids))}) ORDER BY position",
        status_ids)


async def update_details(tx: Tx, account_id: int, media_id: int, description: str | None,
                         focus: tuple[float, float] | None) -> bool:
    """Change description and focus of an upload not yet attached to a status (as Mastodon allows)."""
    sets: list[str] = []
    params: list[Any] = []
    if description is not None:
        sets.append("description = ?")
        params.append(description)
    if focus is not None:
        sets.append("focus_x = ?, focus_y = ?")
        params.extend(focus)
    if not sets:
        return await tx.fetchval("SELECT 1 FROM media_attachments WHERE id = ? AND account_id = ?"
                                 " AND status_id IS NULL", (media_id, account_id)) is not None
    return bool(await tx.execute(
        f"UPDATE media_attachments SET {', '.join(sets)} WHERE id = ? AND account_id = ? AND status_id IS NULL",
        (*params, media_id, account_id)))


async def attach(tx: Tx, account_id: int, status_id: int, media_id: int, position: int) -> bool:
    """Attach one of the account's uploads to a status. Media of a deleted status may be reused, so
    "delete and redraft" keeps its pictures."""
    return bool(await tx.execute(
        "UPDATE media_attachments SET status_id = ?, position = ? WHERE id = ? AND account_id = ?"
        " AND (status_id IS NULL OR EXISTS (SELECT 1 FROM statuses s WHERE s.id = media_attachments.status_id"
        "      AND s.deleted_at IS NOT NULL))",
        (status_id, position, media_id, account_id)))


async def detach_all(tx: Tx, status_id: int) -> None:
    await tx.execute("UPDATE media_attachments SET status_id = NULL WHERE status_id = ?", (status_id,))


async def has_media(db: Reader, status_id: int) -> bool:
    return await db.fetchval("SELECT 1 FROM media_attachments WHERE status_id = ? LIMIT 1", (status_id,)) is not None


async def delete_unattached(tx: Tx, account_id: int, media_id: int) -> Any:
    """Remove an upload nobody uses yet; returns its row (for the files) or None."""
    return await tx.fetchone(
        "DELETE FROM media_attachments WHERE id = ? AND account_id = ? AND status_id IS NULL RETURNING *",
        (media_id, account_id))


async def expired(db: Reader, unattached_before: str, deleted_before: str, limit: int = 500) -> list[Any]:
    """Uploads never attached (nor waiting in a scheduled status) since before `unattached_before`, and
    attachments of statuses deleted before `deleted_before`. Remote attachments have no files but go too."""
    d = db.dialect
    return await db.fetchall(
        "SELECT id, file_path, preview_path FROM media_attachments m"
        " WHERE m.status_id IS NULL AND m.created_at < ?"
        f"   AND CAST(m.id AS TEXT) NOT IN (SELECT {d.json_element_text('j.value')} FROM scheduled_statuses ss,"
        f"       {d.json_array_elements('ss.params', 'media_ids')} j)"
        " UNION ALL"
        " SELECT m.id, m.file_path, m.preview_path FROM media_attachments m JOIN statuses s ON s.id = m.status_id"
        " WHERE s.deleted_at IS NOT NULL AND s.deleted_at < ?"
        " LIMIT ?", (unattached_before, deleted_before, limit))


async def delete_many(tx: Tx, ids: Iterable[int]) -> None:
    ids = list(ids)
    if ids:
        await tx.execute(f"DELETE FROM media_attachments WHERE id IN ({marks(len(ids))})", ids)


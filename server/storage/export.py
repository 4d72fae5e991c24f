"""Reads for a user's data export (`crosstalk admin export-user`): everything one account wrote or
chose, in creation order."""

from __future__ import annotations

from typing import Any

from server.ports import Reader


async def authored_status_ids(db: Reader, account_id: int) -> list[int]:
    """Every post and boost of the account that still exists, oldest first."""
    rows = await db.fetchall("SELECT id FROM statuses WHERE account_id = ? AND deleted_at IS NULL ORDER BY id",
                             (account_id,))
    return [r[0] for r in rows]


async def following(db: Reader, account_id: int) -> list[Any]:
    """(username, domain, uri, show_reblogs, notify) of every account followed, oldest follow first."""
    return await db.fetchall(
        "SELECT a.username, a.domain, a.uri, f.show_reblogs, f.notify FROM follows f"
        " JOIN accounts a ON a.id = f.target_account_id WHERE f.account_id = ? ORDER BY f.id", (account_id,))


async def follower_uris(db: Reader, account_id: int) -> list[str]:
    rows = await db.fetchall(
        "SELECT a.uri FROM follows f JOIN accounts a ON a.id = f.account_id WHERE f.target_account_id = ?"
        " ORDER BY f.id", (account_id,))
    return [r[0] for r in rows]


async def favourited_uris(db: Reader, account_id: int) -> list[str]:
    rows = await db.fetchall(
        "SELECT s.uri FROM favourites f JOIN statuses s ON s.id = f.status_id WHERE f.account_id = ?"
        " AND s.deleted_at IS NULL ORDER BY f.id", (account_id,))
    return [r[0] for r in rows]


async def bookmarked_uris(db: Reader, account_id: int) -> list[str]:
    rows = await db.fetchall(
        "SELECT s.uri FROM bookmarks b JOIN statuses s ON s.id = b.status_id WHERE b.account_id = ?"
        " AND s.deleted_at IS NULL ORDER BY b.id", (account_id,))
    return [r[0] for r in rows]


async def media_files(db: Reader, account_id: int) -> list[str]:
    """Paths (under the media directory) of the account's own uploaded files and previews."""
    rows = await db.fetchall(
        "SELECT file_path FROM media_attachments WHERE account_id = ? AND file_path != ''"
        " UNION SELECT preview_path FROM media_attachments WHERE account_id = ? AND preview_path != ''",
        (account_id, account_id))
    return sorted(r[0] for r in rows)

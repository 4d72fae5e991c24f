"""What other servers tell us about posts: tombstones of deleted ones, emoji reactions, remote media
(referenced by URL), and look-ups by URL or by activity URI."""

from __future__ import annotations

from typing import Any

from server.ids import new_id, now_iso
from server.ports import Reader, Tx
from server.storage.dialect import marks


async def add_tombstone(tx: Tx, uri: str, actor_uri: str | None) -> None:
    await tx.execute("INSERT INTO tombstones (uri, actor_uri, deleted_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                     (uri, actor_uri, now_iso()))


async def is_tombstoned(db: Reader, uri: str) -> bool:
    return await db.fetchval("SELECT 1 FROM tombstones WHERE uri = ?", (uri,)) is not None


async def tombstoned_uris(db: Reader, uris: list[str]) -> set[str]:
    """Those of these URIs whose posts were deleted."""
    rows = await db.fetchall(f"SELECT uri FROM tombstones WHERE uri IN ({marks(len(uris))})", uris) if uris else []
    return {r[0] for r in rows}


async def set_reaction(tx: Tx, account_id: int, status_id: int, name: str, uri: str | None, on: bool) -> None:
    if on:
        await tx.execute("INSERT INTO status_reactions (id, account_id, status_id, name, uri, created_at)"
                         " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", (new_id(), account_id, status_id, name, uri, now_iso()))
    else:
        await tx.execute("DELETE FROM status_reactions WHERE account_id = ? AND status_id = ? AND (uri = ? OR name = ?)",
                         (account_id, status_id, uri, name))


async def favourite_by_uri(db: Reader, uri: str) -> Any:
    return await db.fetchone("SELECT account_id, status_id FROM favourites WHERE uri = ?", (uri,))


async def insert_remote_media(tx: Tx, account_id: int, status_id: int, position: int, attachment: Any) -> None:
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


async def status_id_by_url(db: Reader, url: str) -> int | None:
    return await db.fetchval("SELECT id FROM statuses WHERE url = ? AND deleted_at IS NULL", (url,))

"""Media: uploads (checked and cleaned by services/images.py in worker threads), their descriptions and
focal points, attaching them to statuses, avatars and headers, and purging the ones nobody uses.

Files live in the instance's file store (`<data_dir>/media/` or an S3-compatible bucket, see
server/storage/files.py and s3.py) with random names (`attachments/ab/ab12….jpg`), so a file's URL cannot
be guessed from its id; they are written only after the picture has passed every check, and removed
again if the database write fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import tempfile
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import IO, Any, TypeVar

import msgspec

from server.domain.records import Account
from server.ids import iso, new_id, now_iso
from server.ports import StoredFile, Tx
from server.services import images
from server.services.errors import NotFound, Unprocessable
from server.state import State
from server.storage import media as store

log = logging.getLogger("crosstalk.media")

DESCRIPTION_LIMIT = 1500
MAX_ATTACHMENTS = 4
URL_PREFIX = "/media/"
# What our own file names look like: the only paths /media/ ever serves.
FILE_NAME = re.compile(r"^(attachments|avatars|headers)/[0-9a-f]{2}/[0-9a-f]{32}(_small)?\.(jpg|png|gif|webp)$")
CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp"}

T = TypeVar("T")


async def _in_thread(state: State, fn: Callable[..., T], *args: Any) -> T:
    """Image work off the event loop, in the instance's image workers."""
    return await asyncio.get_running_loop().run_in_executor(state.image_workers, partial(fn, *args))


def content_type(name: str) -> str:
    return CONTENT_TYPES[name.rsplit(".", 1)[1]]


async def stored_file(state: State, name: str) -> tuple[StoredFile, str] | None:
    """The file behind /media/<name> and its content type, if the name is one of ours and it exists."""
    if not FILE_NAME.match(name):
        return None
    found = await state.files.open(name)
    return None if found is None else (found, content_type(name))


async def _write_files(state: State, files: list[tuple[str, bytes]]) -> None:
    await state.files.write([(name, data, content_type(name)) for name, data in files])


async def _remove_files(state: State, names: list[str | None]) -> None:
    await state.files.remove([name for name in names if name and FILE_NAME.match(name)])


def _new_name(folder: str) -> str:
    token = secrets.token_hex(16)
    return f"{folder}/{token[:2]}/{token}"


def parse_focus(text: str | None) -> tuple[float, float] | None:
    """Mastodon's focal point "x,y", each from -1.0 to 1.0."""
    if text is None or not text.strip():
        return None
    parts = text.split(",")
    try:
        x, y = (float(p) for p in parts)
    except ValueError:
        raise Unprocessable("Focus must be two numbers from -1.0 to 1.0, as \"x,y\"") from None
    if not (-1.0 <= x <= 1.0 and -1.0 <= y <= 1.0):
        raise Unprocessable("Focus must be two numbers from -1.0 to 1.0, as \"x,y\"")
    return x, y


def _check_description(description: str | None) -> str | None:
    if description is not None and len(description) > DESCRIPTION_LIMIT:
        raise Unprocessable(f"Description is too long (maximum is {DESCRIPTION_LIMIT} characters)")
    return description


def _file_size(upload: IO[bytes]) -> int:
    return upload.seek(0, os.SEEK_END)


async def spool(state: State, chunks: AsyncIterator[bytes]) -> IO[bytes]:
    """Write an upload to an anonymous temporary file (gone once closed, even after a crash) as it
    arrives, so a large upload never sits in memory."""
    spooled: IO[bytes] = await _in_thread(state, tempfile.TemporaryFile)
    try:
        async for chunk in chunks:
            await _in_thread(state, spooled.write, chunk)
    except BaseException:
        spooled.close()
        raise
    return spooled


def check_size(state: State, size: int) -> None:
    limit = state.settings.media.max_image_size
    if size > limit:
        raise Unprocessable(f"File is too large (maximum is {limit} bytes)")


def _meta(processed: images.Processed) -> str:
    def dims(e: images.Encoded) -> dict[str, Any]:
        return {"width": e.width, "height": e.height, "size": f"{e.width}x{e.height}",
                "aspect": round(e.width / e.height, 6)}

    original = dims(processed.original)
    if processed.frames > 1:
        original["duration"] = processed.duration
        original["frames"] = processed.frames
    return msgspec.json.encode({"original": original, "small": dims(processed.preview)}).decode()


async def upload(state: State, account: Account, data: IO[bytes], *, description: str | None = None,
                 focus: str | None = None) -> Any:
    """Check, clean and store an uploaded image (a seekable file: uploads are spooled to disk);
    returns its media_attachments row."""
    check_size(state, await _in_thread(state, _file_size, data))
    description = _check_description(description)
    point = parse_focus(focus) or (0.0, 0.0)
    try:
        processed = await _in_thread(state, images.process_attachment, data, state.settings.media.max_image_pixels)
    except images.ImageRejected as exc:
        raise Unprocessable(str(exc)) from None
    name = _new_name("attachments")
    original = f"{name}.{processed.original.ext}"
    preview = f"{name}_small.{processed.preview.ext}"
    await _write_files(state, [(original, processed.original.data), (preview, processed.preview.data)])
    media_id = new_id()
    try:
        async with state.db.transaction() as tx:
            await store.insert(tx, media_id=media_id, account_id=account.id, kind="image",
                               mime_type=processed.original.mime, file_path=original, preview_path=preview,
                               description=description or None, focus=point, blurhash=processed.blurhash,
                               meta=_meta(processed), size=len(processed.original.data), created_at=now_iso())
    except BaseException:
        await _remove_files(state, [original, preview])
        raise
    row = await store.get(state.db, media_id)
    assert row is not None
    return row


async def own_media(state: State, account: Account, media_id: int) -> Any:
    row = await store.get(state.db, media_id)
    if row is None or row["account_id"] != account.id:
        raise NotFound()
    return row


async def update(state: State, account: Account, media_id: int, *, description: str | None,
                 focus: str | None) -> Any:
    """New description or focus for an upload that is not yet part of a post (as in Mastodon)."""
    description = _check_description(description)
    point = parse_focus(focus)
    async with state.db.transaction() as tx:
        changed = await store.update_details(tx, account.id, media_id, description, point)
    if not changed:
        raise NotFound()
    return await own_media(state, account, media_id)


async def delete(state: State, account: Account, media_id: int) -> None:
    async with state.db.transaction() as tx:
        row = await store.delete_unattached(tx, account.id, media_id)
    if row is None:
        raise NotFound()
    await _remove_files(state, [row["file_path"], row["preview_path"]])


async def attach(tx: Tx, account_id: int, status_id: int, media_ids: list[int]) -> None:
    """Attach the author's uploads to a new or edited status, in the order given (inside its transaction)."""
    if len(media_ids) > MAX_ATTACHMENTS:
        raise Unprocessable(f"Too many media attachments (maximum is {MAX_ATTACHMENTS})")
    if len(set(media_ids)) != len(media_ids):
        raise Unprocessable("The same media attachment cannot be attached twice")
    for position, media_id in enumerate(media_ids):
        if not await store.attach(tx, account_id, status_id, media_id, position):
            raise Unprocessable(f"Media attachment {media_id} was not found or is already attached")


# -- avatars and headers ----------------------------------------------------------------------

async def profile_images(state: State, avatar: IO[bytes] | None,
                         header: IO[bytes] | None) -> tuple[str | None, str | None]:
    """Store a new avatar and/or header (files as uploaded); returns their URL paths ("/media/avatars/…"),
    None for the ones not sent. Both are checked before either is written."""
    encoded: dict[str, images.Encoded] = {}
    for kind, upload in (("avatar", avatar), ("header", header)):
        if upload is None:
            continue
        check_size(state, await _in_thread(state, _file_size, upload))  # request.post() spooled it to disk
        box = images.AVATAR_SIZE if kind == "avatar" else images.HEADER_SIZE
        try:
            encoded[kind] = await _in_thread(state, images.process_profile_image, upload,
                                             state.settings.media.max_image_pixels, box)
        except images.ImageRejected as exc:
            raise Unprocessable(f"{kind.capitalize()}: {exc}") from None
    files = {kind: f"{_new_name(kind + 's')}.{e.ext}" for kind, e in encoded.items()}
    await _write_files(state, [(files[k], encoded[k].data) for k in files])
    avatar_url = URL_PREFIX + files["avatar"] if "avatar" in files else None
    header_url = URL_PREFIX + files["header"] if "header" in files else None
    return avatar_url, header_url


def _relative(url: str | None) -> str | None:
    return url[len(URL_PREFIX):] if url and url.startswith(URL_PREFIX) else None


@contextlib.asynccontextmanager
async def replacing_profile_images(state: State, account: Account, avatar: str | None,
                                   header: str | None) -> AsyncIterator[None]:
    """Around the profile update that stores new avatar/header URLs: if it fails, the new files go;
    if it succeeds, the files they replace go."""
    try:
        yield
    except BaseException:
        await _remove_files(state, [_relative(avatar), _relative(header)])
        raise
    old: list[str | None] = []
    if avatar is not None and avatar != account.avatar_url:
        old.append(_relative(account.avatar_url))
    if header is not None and header != account.header_url:
        old.append(_relative(account.header_url))
    await _remove_files(state, old)


# -- clean-up ---------------------------------------------------------------------------------

async def purge_expired(state: State, now: datetime | None = None) -> int:
    """Delete uploads unused for longer than media.unattached_ttl, and the media of statuses deleted
    that long ago, files first so a crash leaves rows (retried) rather than files nobody points to."""
    now = now or datetime.now(UTC)
    cutoff = iso(now - timedelta(seconds=state.settings.media.unattached_ttl))
    removed = 0
    while True:
        rows = await store.expired(state.db, cutoff, cutoff)
        if not rows:
            return removed
        await _remove_files(state, [p for r in rows for p in (r["file_path"], r["preview_path"])])
        async with state.db.transaction() as tx:
            await store.delete_many(tx, [r["id"] for r in rows])
        removed += len(rows)
        log.info("removed %d unused media attachments", len(rows))

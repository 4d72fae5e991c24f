"""/api/v1/media, /api/v2/media, /api/v1/profile/{avatar,header} and the media files themselves (/media/…)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import IO, Any

from aiohttp import BodyPartReader, web

from server.http.base import add_routes, json_response, params, path_id, require_user, state_of
from server.render import mastodon as render
from server.services import accounts as account_service
from server.services import media as service
from server.services.errors import BadRequest, Unprocessable

FIELD_LIMIT = 16 * 1024  # description, focus: text fields are small
CHUNK = 256 * 1024
FILE_HEADERS = {"Cache-Control": "public, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; sandbox", "Access-Control-Allow-Origin": "*"}


async def _read_part(part: BodyPartReader, limit: int) -> tuple[bytes, bool]:
    """A part's bytes up to `limit`; the rest is read and dropped (so the client can read our answer
    instead of seeing its upload cut off), within a bound. Returns (data, too_large)."""
    buf = bytearray()
    dropped = 0
    while chunk := await part.read_chunk(CHUNK):
        if len(buf) + len(chunk) <= limit and not dropped:
            buf.extend(chunk)
            continue
        dropped += len(chunk)
        if dropped > 2 * limit + 1024 * 1024:
            raise Unprocessable(f"File is too large (maximum is {limit} bytes)")
    return bytes(buf), bool(dropped)


async def _file_chunks(part: BodyPartReader, limit: int) -> AsyncIterator[bytes]:
    received = 0
    while chunk := await part.read_chunk(CHUNK):
        received += len(chunk)
        if received > limit:
            raise Unprocessable(f"File is too large (maximum is {limit} bytes)")
        yield chunk


async def _upload_form(request: web.Request, max_size: int) -> tuple[IO[bytes], dict[str, str]]:
    """The `file` and text fields of a multipart upload, read as they stream in: the file goes to a
    temporary file on disk (never whole into memory), and one over the size limit is refused as soon
    as it passes the limit. The caller closes the file."""
    if request.content_type != "multipart/form-data":
        raise Unprocessable("File is missing: send it as the \"file\" field of a multipart/form-data body")
    fields = {k: v for k, v in request.query.items()}
    data: IO[bytes] | None = None
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise BadRequest("Nested multipart bodies are not supported")
            if part.name == "file" and data is None:
                data = await service.spool(state_of(request), _file_chunks(part, max_size))
            elif part.name:
                value, too_large = await _read_part(part, FIELD_LIMIT)
                if too_large:
                    raise Unprocessable(f"{part.name} is too long")
                fields[part.name] = value.decode("utf-8", errors="replace")
            else:
                await part.release()
    except ValueError:  # a malformed multipart body (missing boundary, bad headers)
        if data is not None:
            data.close()
        raise BadRequest("The multipart body could not be read") from None
    except BaseException:
        if data is not None:
            data.close()
        raise
    if data is None:
        raise Unprocessable("File is missing: send it as the \"file\" field of a multipart/form-data body")
    return data, fields


async def create(request: web.Request) -> web.Response:
    st = state_of(request)
    account = await require_user(request, "write:media")
    data, fields = await _upload_form(request, st.settings.media.max_image_size)
    with data:
        row = await service.upload(st, account, data, description=fields.get("description"),
                                   focus=fields.get("focus"))
    # Images are processed before we answer, so v2 can say 200 with the URL (202 is for later processing).
    return json_response(render.media_json(st, row))


async def show(request: web.Request) -> web.Response:
    st = state_of(request)
    account = await require_user(request, "write:media")
    row = await service.own_media(st, account, path_id(request))
    return json_response(render.media_json(st, row), status=206 if row["processing"] else 200)


async def update(request: web.Request) -> web.Response:
    st = state_of(request)
    account = await require_user(request, "write:media")
    p = await params(request)
    row = await service.update(st, account, path_id(request), description=p.str("description"),
                               focus=p.str("focus"))
    return json_response(render.media_json(st, row))


async def delete(request: web.Request) -> web.Response:
    st = state_of(request)
    account = await require_user(request, "write:media")
    await service.delete(st, account, path_id(request))
    return json_response({})


async def _clear_profile_image(request: web.Request, kind: str) -> web.Response:
    st = state_of(request)
    account = await require_user(request, "write:accounts")
    avatar, header = ("", None) if kind == "avatar" else (None, "")
    changes = account_service.ProfileChanges(avatar_url=avatar, header_url=header)
    async with service.replacing_profile_images(st, account, avatar, header):
        updated = await account_service.update_profile(st, account, changes)
    updated, user = await account_service.with_user(st, updated)
    return json_response(render.credential_account_json(st, updated, user))


async def delete_avatar(request: web.Request) -> web.Response:
    return await _clear_profile_image(request, "avatar")


async def delete_header(request: web.Request) -> web.Response:
    return await _clear_profile_image(request, "header")


async def serve_file(request: web.Request) -> web.StreamResponse:
    """A stored file. Names are random and never reused, so caches may keep them for ever."""
    found = await service.stored_file(state_of(request), request.match_info["path"])
    if found is None:
        raise web.HTTPNotFound()
    stored, content_type = found
    headers: dict[str, Any] = {**FILE_HEADERS, "Content-Type": content_type}
    if stored.path is not None:
        return web.FileResponse(stored.path, headers=headers)
    if stored.redirect is not None:
        raise web.HTTPFound(stored.redirect)
    assert stored.chunks is not None
    response = web.StreamResponse(headers=headers)
    response.content_length = stored.size
    await response.prepare(request)
    async for chunk in stored.chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("POST", "/api/v1/media", create),
        ("POST", "/api/v2/media", create),
        ("GET", "/api/v1/media/{id}", show),
        ("PUT", "/api/v1/media/{id}", update),
        ("DELETE", "/api/v1/media/{id}", delete),
        ("DELETE", "/api/v1/profile/avatar", delete_avatar),
        ("DELETE", "/api/v1/profile/header", delete_header),
    ])
    app.router.add_get("/media/{path:.+}", serve_file)

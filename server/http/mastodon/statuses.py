"""/api/v1/statuses/*"""

from __future__ import annotations

from aiohttp import web

from server.domain.records import ScheduledStatus, Status
from server.http.base import (
    add_routes,
    encoded_json_response,
    json_response,
    link_header,
    optional_user_id,
    page,
    params,
    path_id,
    require_user,
    state_of,
)
from server.http.mastodon.polls import poll_param, time_param
from server.render import mastodon as render
from server.render import scheduled as scheduled_render
from server.services import scheduled as scheduled_service
from server.services import statuses as service


async def _one(request: web.Request, status: Status, viewer_id: int | None, with_source: bool = False,
               reload: bool = False) -> web.Response:
    st = state_of(request)
    found = await service.shown(st, viewer_id, status, reload=reload, with_source=with_source)
    return json_response(render.statuses_json(st, found)[0])


async def create(request: web.Request) -> web.Response:
    st = state_of(request)
    account = await require_user(request, "write:statuses")
    p = await params(request)
    creds = request["credentials"]
    visibility = p.str("visibility") or None
    local_only = p.bool("local_only")
    if visibility == "local":  # Akkoma's spelling of a local-only post
        visibility, local_only = "public", True
    new = service.NewStatus(
        text=p.text("status"), in_reply_to_id=p.id("in_reply_to_id"), visibility=visibility,
        spoiler_text=p.text("spoiler_text"), sensitive=p.bool("sensitive"), language=p.str("language") or None,
        media_ids=p.ids("media_ids"), app_id=creds.token.app_id,
        idempotency_key=request.headers.get("Idempotency-Key"), poll=poll_param(p), local_only=local_only,
        group_id=p.id("group_id"))
    scheduled_at = time_param(p, "scheduled_at")
    if scheduled_at is not None:
        result = await scheduled_service.schedule(st, account, new, scheduled_at)
        if isinstance(result, ScheduledStatus):
            return json_response(scheduled_render.scheduled_statuses_json(st, await scheduled_service.shown(st, [result]))[0])
        return await _one(request, result, account.id)
    status = await service.post_status(st, account, new)
    return await _one(request, status, account.id)


async def get(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer_id = await optional_user_id(request, "read:statuses")
    return json_response(render.statuses_json(st, await service.show(st, viewer_id, path_id(request)))[0])


async def delete(request: web.Request) -> web.Response:
    account = await require_user(request, "write:statuses")
    st = state_of(request)
    status = await service.delete_status(st, account, path_id(request))
    return await _one(request, status, account.id, with_source=True)


async def edit(request: web.Request) -> web.Response:
    account = await require_user(request, "write:statuses")
    st = state_of(request)
    p = await params(request)
    changes = service.StatusEdit(text=p.str("status"), spoiler_text=p.str("spoiler_text"),
                                 sensitive=p.bool("sensitive"), language=p.str("language") or None,
                                 media_ids=p.ids("media_ids") if p.has("media_ids") else None)
    status = await service.edit_status(st, account, path_id(request), changes)
    return await _one(request, status, account.id)


async def history(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer_id = await optional_user_id(request, "read:statuses")
    found = await service.history(st, viewer_id, path_id(request))
    return json_response(render.status_history_json(st, found.status, found.author, found.edits))


async def source(request: web.Request) -> web.Response:
    account = await require_user(request, "read:statuses")
    status = await service.visible_status(state_of(request), account.id, path_id(request))
    return json_response({"id": str(status.id), "text": status.source_text, "spoiler_text": status.spoiler_text})


async def context(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer_id = await optional_user_id(request, "read:statuses")
    ancestors, descendants = await service.thread(st, viewer_id, path_id(request))
    return encoded_json_response(render.thread_context_bytes(st, ancestors, descendants))


def _action(fn_name: str, scope: str, **kwargs: object):  # type: ignore[no-untyped-def]
    async def handler(request: web.Request) -> web.Response:
        account = await require_user(request, scope)
        st = state_of(request)
        fn = getattr(service, fn_name)
        extra = dict(kwargs)
        if fn_name == "reblog":
            extra["visibility"] = (await params(request)).str("visibility")
        result = await fn(st, account, path_id(request), **extra)
        if fn_name == "reblog":
            return await _one(request, result, account.id)
        return await _one(request, result, account.id, reload=True)
    return handler


async def _who(request: web.Request, kind: str) -> web.Response:
    st = state_of(request)
    viewer_id = await optional_user_id(request, "read:accounts")
    pg = page(await params(request), 40, 80)
    found, cursor = await service.interacting(st, viewer_id, path_id(request), kind, pg)
    return json_response(render.accounts_json(st, found), headers=link_header(request, cursor))


async def favourited_by(request: web.Request) -> web.Response:
    return await _who(request, "favourites")


async def reblogged_by(request: web.Request) -> web.Response:
    return await _who(request, "reblogs")


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("POST", "/api/v1/statuses", create),
        ("GET", "/api/v1/statuses/{id}", get),
        ("DELETE", "/api/v1/statuses/{id}", delete),
        ("PUT", "/api/v1/statuses/{id}", edit),
        ("GET", "/api/v1/statuses/{id}/history", history),
        ("GET", "/api/v1/statuses/{id}/source", source),
        ("GET", "/api/v1/statuses/{id}/context", context),
        ("GET", "/api/v1/statuses/{id}/favourited_by", favourited_by),
        ("GET", "/api/v1/statuses/{id}/reblogged_by", reblogged_by),
        ("POST", "/api/v1/statuses/{id}/favourite", _action("favourite", "write:favourites")),
        ("POST", "/api/v1/statuses/{id}/unfavourite", _action("unfavourite", "write:favourites")),
        ("POST", "/api/v1/statuses/{id}/reblog", _action("reblog", "write:statuses")),
        ("POST", "/api/v1/statuses/{id}/unreblog", _action("unreblog", "write:statuses")),
        ("POST", "/api/v1/statuses/{id}/bookmark", _action("bookmark", "write:bookmarks", on=True)),
        ("POST", "/api/v1/statuses/{id}/unbookmark", _action("bookmark", "write:bookmarks", on=False)),
        ("POST", "/api/v1/statuses/{id}/pin", _action("pin", "write:accounts", on=True)),
        ("POST", "/api/v1/statuses/{id}/unpin", _action("pin", "write:accounts", on=False)),
    ])

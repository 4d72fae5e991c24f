"""The SCIM 2.0 server at /scim/v2 (RFC 7644): discovery documents, Users and Groups. Bearer tokens
come from `crosstalk admin scim-token create`; answers are application/scim+json, errors in SCIM's
error schema."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from server.http.base import Handler, json_response, state_of
from server.render import scim as render
from server.services import scim as service
from server.services.audit import Actor
from server.services.errors import ServiceError

PREFIX = "/scim/v2"
CONTENT_TYPE = "application/scim+json"
MAX_BODY = 1024 * 1024


def scim_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return json_response(data, status=status, headers=headers, content_type=CONTENT_TYPE)


def _base(request: web.Request) -> str:
    return state_of(request).base_url + PREFIX


def error_answer(exc: ServiceError) -> web.Response:
    """A failure under /scim/v2 in SCIM's error format (the app's middleware answers the rest)."""
    if isinstance(exc, service.ScimError):
        return scim_response(render.error_json(exc.status, exc.message, exc.scim_type), status=exc.status)
    return scim_response(render.error_json(exc.status, exc.message, None), status=exc.status)


def http_error_answer(exc: web.HTTPException) -> web.Response:
    """aiohttp's own refusals (no such route, method not allowed) under /scim/v2, in SCIM's format."""
    return scim_response(render.error_json(exc.status, exc.reason, None), status=exc.status)


async def _actor(request: web.Request) -> Actor:
    return await service.authenticate(state_of(request), request.headers.get("Authorization", ""), request.remote)


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise service.ScimError(413, "The request body is too large")
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise service.ScimError(400, "The body is not valid JSON", "invalidSyntax") from None
    if not isinstance(body, dict):
        raise service.ScimError(400, "The body must be a JSON object", "invalidSyntax")
    return body


def _int(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise service.ScimError(400, f"{name} must be a number", "invalidValue") from None


def _names(request: web.Request, name: str) -> list[str]:
    return [part.strip() for value in request.query.getall(name, []) for part in value.split(",") if part.strip()]


def _project(request: web.Request, doc: dict[str, Any]) -> dict[str, Any]:
    return render.project(doc, _names(request, "attributes"), _names(request, "excludedAttributes"))


# -- discovery (no token needed beyond the bearer: RFC 7644 allows it without, clients send one anyway) --

async def service_provider_config(request: web.Request) -> web.Response:
    await _actor(request)
    return scim_response(render.service_provider_config(_base(request), state_of(request).settings.scim.max_results))


async def resource_types(request: web.Request) -> web.Response:
    await _actor(request)
    found = render.resource_types(_base(request))
    wanted = request.match_info.get("name")
    if wanted:
        match = [r for r in found if r["id"] == wanted]
        if not match:
            raise service.ScimError(404, f"ResourceType {wanted} not found")
        return scim_response(match[0])
    return scim_response(render.list_json(found, len(found), 1))


async def schemas(request: web.Request) -> web.Response:
    await _actor(request)
    found = render.schemas(_base(request))
    wanted = request.match_info.get("name")
    if wanted:
        match = [s for s in found if s["id"] == wanted]
        if not match:
            raise service.ScimError(404, f"Schema {wanted} not found")
        return scim_response(match[0])
    return scim_response(render.list_json(found, len(found), 1))


# -- users ---------------------------------------------------------------------------------------------------

async def list_users(request: web.Request) -> web.Response:
    await _actor(request)
    st = state_of(request)
    total, start, users = await service.list_users(st, request.query.get("filter"), _int(request, "startIndex"),
                                                   _int(request, "count"))
    resources = [_project(request, render.user_json(_base(request), u)) for u in users]
    return scim_response(render.list_json(resources, total, start))


async def get_user(request: web.Request) -> web.Response:
    await _actor(request)
    user = await service.get_user(state_of(request), request.match_info["id"])
    return scim_response(_project(request, render.user_json(_base(request), user)))


async def create_user(request: web.Request) -> web.Response:
    actor = await _actor(request)
    user = await service.create_user(state_of(request), actor, await _body(request))
    doc = render.user_json(_base(request), user)
    return scim_response(doc, status=201, headers={"Location": doc["meta"]["location"]})


def _user_write(work: Callable[..., Awaitable[Any]]) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        actor = await _actor(request)
        user = await work(state_of(request), actor, request.match_info["id"], await _body(request))
        return scim_response(render.user_json(_base(request), user))
    return handler


async def delete_user(request: web.Request) -> web.Response:
    actor = await _actor(request)
    await service.delete_user(state_of(request), actor, request.match_info["id"])
    return web.Response(status=204)


# -- groups --------------------------------------------------------------------------------------------------

def _with_members(request: web.Request) -> bool:
    excluded = {name.lower() for name in _names(request, "excludedAttributes")}
    attributes = {name.lower().split(".")[0] for name in _names(request, "attributes")}
    return "members" not in excluded and (not attributes or "members" in attributes)


async def list_groups(request: web.Request) -> web.Response:
    await _actor(request)
    members = _with_members(request)
    total, start, groups = await service.list_groups(state_of(request), request.query.get("filter"),
                                                     _int(request, "startIndex"), _int(request, "count"), members)
    resources = [_project(request, render.group_json(_base(request), g, members)) for g in groups]
    return scim_response(render.list_json(resources, total, start))


async def get_group(request: web.Request) -> web.Response:
    await _actor(request)
    group = await service.get_group(state_of(request), request.match_info["id"])
    return scim_response(_project(request, render.group_json(_base(request), group, _with_members(request))))


async def create_group(request: web.Request) -> web.Response:
    actor = await _actor(request)
    group = await service.create_group(state_of(request), actor, await _body(request))
    doc = render.group_json(_base(request), group)
    return scim_response(doc, status=201, headers={"Location": doc["meta"]["location"]})


def _group_write(work: Callable[..., Awaitable[Any]]) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        actor = await _actor(request)
        group = await work(state_of(request), actor, request.match_info["id"], await _body(request))
        return scim_response(render.group_json(_base(request), group))
    return handler


async def delete_group(request: web.Request) -> web.Response:
    actor = await _actor(request)
    await service.delete_group(state_of(request), actor, request.match_info["id"])
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    routes: list[tuple[str, str, Handler]] = [
        ("GET", "/ServiceProviderConfig", service_provider_config),
        ("GET", "/ResourceTypes", resource_types),
        ("GET", "/ResourceTypes/{name}", resource_types),
        ("GET", "/Schemas", schemas),
        ("GET", "/Schemas/{name}", schemas),
        ("GET", "/Users", list_users),
        ("POST", "/Users", create_user),
        ("GET", "/Users/{id}", get_user),
        ("PUT", "/Users/{id}", _user_write(service.replace_user)),
        ("PATCH", "/Users/{id}", _user_write(service.patch_user)),
        ("DELETE", "/Users/{id}", delete_user),
        ("GET", "/Groups", list_groups),
        ("POST", "/Groups", create_group),
        ("GET", "/Groups/{id}", get_group),
        ("PUT", "/Groups/{id}", _group_write(service.replace_group)),
        ("PATCH", "/Groups/{id}", _group_write(service.patch_group)),
        ("DELETE", "/Groups/{id}", delete_group),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, PREFIX + path, handler)

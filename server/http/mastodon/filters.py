"""/api/v2/filters (filters, keywords, statuses) and the v1 /api/v1/filters mapped onto keywords."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.domain.records import Filter
from server.http.base import Params, add_routes, json_response, params, path_id, require_user, state_of
from server.ids import parse_id
from server.render.lists_filters import filter_json, filter_status_json, filter_v1_json, keyword_json
from server.services import filters as service
from server.services.errors import Unprocessable

READ = "read:filters"
WRITE = "write:filters"


def _bool(value: Any, name: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "on", "yes", "t"):
        return True
    if text in ("0", "false", "off", "no", "f", ""):
        return False
    raise Unprocessable(f"{name} must be true or false")


def _nested_list(p: Params, name: str) -> list[dict[str, Any]]:
    """Rails-style arrays of hashes: a JSON list (or {"0": {...}}), or form keys `name[][field]`
    (a repeated field starts the next hash) and `name[0][field]`."""
    for key, value in p.items():
        if key in (name, f"{name}[]") and not isinstance(value, str):
            if isinstance(value, dict):
                value = [value[k] for k in sorted(value, key=lambda k: int(k) if str(k).isdigit() else 0)]
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise Unprocessable(f"{name} must be a list of objects")
            return value
    anonymous: list[dict[str, Any]] = []
    indexed: dict[str, dict[str, Any]] = {}
    prefix = f"{name}["
    for key, value in p.items():
        if not key.startswith(prefix) or not isinstance(value, str):
            continue
        index, _, rest = key[len(prefix):].partition("]")
        field = rest.strip("[]")
        if not field:
            continue
        if index == "":
            if not anonymous or field in anonymous[-1]:
                anonymous.append({})
            anonymous[-1][field] = value
        else:
            indexed.setdefault(index, {})[field] = value
    ordered = [indexed[k] for k in sorted(indexed, key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k))]
    return anonymous + ordered


def _keyword_changes(p: Params) -> list[service.KeywordChange] | None:
    if not any(k == "keywords_attributes" or k.startswith("keywords_attributes[") for k, _ in p.items()):
        return None
    changes = []
    for item in _nested_list(p, "keywords_attributes"):
        raw_id = item.get("id")
        keyword_id = None
        if raw_id not in (None, ""):
            keyword_id = None if isinstance(raw_id, bool) else parse_id(str(raw_id))
            if keyword_id is None:
                raise Unprocessable("keywords_attributes contains an invalid id")
        keyword = item.get("keyword")
        if keyword is not None and not isinstance(keyword, str | int | float):
            raise Unprocessable("keyword must be a string")
        changes.append(service.KeywordChange(
            keyword=None if keyword is None else str(keyword), whole_word=_bool(item.get("whole_word"), "whole_word"),
            id=keyword_id, destroy=bool(_bool(item.get("_destroy"), "_destroy"))))
    return changes


def _expires_in(p: Params) -> Any:
    """Seconds, or None when given empty (no expiry); service.KEEP when not given at all."""
    if not p.has("expires_in"):
        return service.KEEP
    if p.str("expires_in") in (None, ""):
        return None
    return p.int("expires_in")


async def _full(request: web.Request, f: Filter) -> dict[str, Any]:
    return filter_json(*(await service.with_rules(state_of(request), [f]))[0])


# -- v2 -----------------------------------------------------------------------------------------------

async def index(request: web.Request) -> web.Response:
    st = state_of(request)
    account = await require_user(request, READ)
    return json_response([filter_json(*full) for full in await service.owned(st, account)])


async def show(request: web.Request) -> web.Response:
    account = await require_user(request, READ)
    return json_response(await _full(request, await service.get_filter(state_of(request), account, path_id(request))))


async def create(request: web.Request) -> web.Response:
    account = await require_user(request, WRITE)
    p = await params(request)
    expires = _expires_in(p)
    created = await service.create(state_of(request), account, title=p.str("title"), context=p.list("context"),
                                   action=p.str("filter_action"), expires_in=None if expires is service.KEEP else expires,
                                   keywords=_keyword_changes(p) or [])
    return json_response(await _full(request, created))


async def update(request: web.Request) -> web.Response:
    account = await require_user(request, WRITE)
    p = await params(request)
    context = p.list("context") if p.has("context") else None
    updated = await service.update(state_of(request), account, path_id(request), title=p.str("title"),
                                   context=context, action=p.str("filter_action"), expires_in=_expires_in(p),
                                   keywords=_keyword_changes(p))
    return json_response(await _full(request, updated))


async def delete(request: web.Request) -> web.Response:
    account = await require_user(request, WRITE)
    await service.delete(state_of(request), account, path_id(request))
    return json_response({})


async def keywords(request: web.Request) -> web.Response:
    st = state_of(request)
    account = await require_user(request, READ)
    return json_response([keyword_json(k) for k in await service.keywords_of(st, account, path_id(request))])


async def add_keyword(request: web.Request) -> web.Response:
    account = await require_user(request, WRITE)
    p = await params(request)
    created = await service.add_keyword(state_of(request), account, path_id(request), p.str("keyword"),
                                        p.bool("whole_word"))
    return json_response(keyword_json(created))


async def show_keyword(request: web.Request) -> web.Response:
    account = await require_user(request, READ)
    return json_response(keyword_json(await service.get_keyword(state_of(request), account, path_id(request))))


async def update_keyword(request: web.Request) -> web.Response:
    account = await require_user(request, WRITE)
    p = await params(request)
    updated = await service.update_keyword(state_of(request), account, path_id(request), p.str("keyword"),
                                           p.bool("whole_word"))
    return json_response(keyword_json(updated))


async def delete_keyword(request: web.Request) -> web.Response:
    account = await require_user(request, WRITE)
    await service.delete_keyword(state_of(request), account, path_id(request))
    return json_response({})


async def statuses(request: web.Request) -> web.Response:
    st = state_of(request)
    account = await require_user(request, READ)
    return json_response([filter_status_json(s) for s in await service.statuses_of(st, account, path_id(request))])


async def add_status(request: web.Request) -> web.Response:
    account = await require_user(request, WRITE)
    p = await params(request)
    created = await service.add_status(state_of(request), account, path_id(request), p.id("status_id"))
    return json_response(filter_status_json(created))


async def show_status(request: web.Request) -> web.Response:
    account = await require_user(request, READ)
    return json_response(filter_status_json(await service.get_status(state_of(request), account, path_id(request))))


async def delete_status(request: web.Request) -> web.Response:
    account = await require_user(request, WRITE)
    await service.delete_status(state_of(request), account, path_id(request))
    return json_response({})


# -- v1 -----------------------------------------------------------------------------------------------

async def v1_index(request: web.Request) -> web.Response:
    account = await require_user(request, READ)
    return json_response([filter_v1_json(f, k) for f, k in await service.v1_filters(state_of(request), account)])


async def v1_show(request: web.Request) -> web.Response:
    account = await require_user(request, READ)
    return json_response(filter_v1_json(*await service.v1_get(state_of(request), account, path_id(request))))


async def v1_create(request: web.Request) -> web.Response:
    account = await require_user(request, WRITE)
    p = await params(request)
    expires = _expires_in(p)
    f, k = await service.v1_create(state_of(request), account, phrase=p.str("phrase"), context=p.list("context"),
                                   irreversible=p.bool("irreversible"), whole_word=p.bool("whole_word"),
                                   expires_in=None if expires is service.KEEP else expires)
    return json_response(filter_v1_json(f, k))


async def v1_update(request: web.Request) -> web.Response:
    account = await require_user(request, WRITE)
    p = await params(request)
    f, k = await service.v1_update(state_of(request), account, path_id(request), phrase=p.str("phrase"),
                                   context=p.list("context") if p.has("context") else None,
                                   irreversible=p.bool("irreversible"), whole_word=p.bool("whole_word"),
                                   expires_in=_expires_in(p))
    return json_response(filter_v1_json(f, k))


async def v1_delete(request: web.Request) -> web.Response:
    account = await require_user(request, WRITE)
    await service.v1_delete(state_of(request), account, path_id(request))
    return json_response({})


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("GET", "/api/v2/filters", index),
        ("POST", "/api/v2/filters", create),
        # Fixed paths before /{id} so "keywords" and "statuses" are never read as filter ids.
        ("GET", "/api/v2/filters/keywords/{id}", show_keyword),
        ("PUT", "/api/v2/filters/keywords/{id}", update_keyword),
        ("DELETE", "/api/v2/filters/keywords/{id}", delete_keyword),
        ("GET", "/api/v2/filters/statuses/{id}", show_status),
        ("DELETE", "/api/v2/filters/statuses/{id}", delete_status),
        ("GET", "/api/v2/filters/{id}", show),
        ("PUT", "/api/v2/filters/{id}", update),
        ("DELETE", "/api/v2/filters/{id}", delete),
        ("GET", "/api/v2/filters/{id}/keywords", keywords),
        ("POST", "/api/v2/filters/{id}/keywords", add_keyword),
        ("GET", "/api/v2/filters/{id}/statuses", statuses),
        ("POST", "/api/v2/filters/{id}/statuses", add_status),
        ("GET", "/api/v1/filters", v1_index),
        ("POST", "/api/v1/filters", v1_create),
        ("GET", "/api/v1/filters/{id}", v1_show),
        ("PUT", "/api/v1/filters/{id}", v1_update),
        ("DELETE", "/api/v1/filters/{id}", v1_delete),
    ])

"""/api/v1/push/subscription: an access token's Web Push subscription (POST, GET, PUT, DELETE)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.http.base import (
    FALSE,
    TRUE,
    Params,
    add_routes,
    credentials,
    json_response,
    params,
    require_user,
    state_of,
)
from server.services import push as service
from server.services.errors import Unauthorized, Unprocessable
from server.services.oauth import Credentials


def _flatten(p: Params) -> dict[str, Any]:
    """JSON objects and bracketed form keys alike as dotted names: subscription[keys][auth] and
    {"subscription": {"keys": {"auth": ...}}} both become `subscription.keys.auth`."""
    flat: dict[str, Any] = {}

    def walk(name: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{name}.{key}", inner)
        else:
            flat[name] = value

    for key, value in p.items():
        walk(key.replace("][", ".").replace("[", ".").rstrip("]"), value)
    return flat


def _text(flat: dict[str, Any], name: str) -> str | None:
    value = flat.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Unprocessable(f"{name} must be a string")
    return value


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, str | int) else None
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise Unprocessable(f"{name} must be true or false")


def _request(p: Params) -> service.SubscriptionRequest:
    flat = _flatten(p)
    prefix = "data.alerts."
    alerts = {name[len(prefix):]: _flag(value, f"data[alerts][{name[len(prefix):]}]")
              for name, value in flat.items() if name.startswith(prefix)}
    standard = flat.get("subscription.standard")
    return service.SubscriptionRequest(
        endpoint=_text(flat, "subscription.endpoint"), p256dh=_text(flat, "subscription.keys.p256dh"),
        auth=_text(flat, "subscription.keys.auth"),
        standard=False if standard is None else _flag(standard, "subscription[standard]"),
        alerts=alerts, policy=_text(flat, "data.policy") or _text(flat, "policy"))


async def _caller(request: web.Request) -> tuple[Credentials, int]:
    account = await require_user(request, "push")
    creds = await credentials(request)
    if creds is None:
        raise Unauthorized("The access token is invalid")
    return creds, account.id


async def create(request: web.Request) -> web.Response:
    creds, account_id = await _caller(request)
    bearer = request.headers.get("Authorization", "")[7:].strip()
    subscription = _request(await params(request))
    return json_response(await service.subscribe(state_of(request), creds, account_id, bearer, subscription))


async def show(request: web.Request) -> web.Response:
    creds, _ = await _caller(request)
    return json_response(await service.current(state_of(request), creds))


async def update(request: web.Request) -> web.Response:
    creds, _ = await _caller(request)
    return json_response(await service.update(state_of(request), creds, _request(await params(request))))


async def destroy(request: web.Request) -> web.Response:
    creds, _ = await _caller(request)
    await service.unsubscribe(state_of(request), creds)
    return json_response({})


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("POST", "/api/v1/push/subscription", create),
        ("GET", "/api/v1/push/subscription", show),
        ("PUT", "/api/v1/push/subscription", update),
        ("DELETE", "/api/v1/push/subscription", destroy),
    ])

"""What every HTTP handler shares: reading parameters the lenient way clients send them, finding the
caller from the bearer token, pagination headers and JSON answers."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import IO, Any
from urllib.parse import urlencode

import msgspec
from aiohttp import web
from multidict import MultiDict

from server.domain.paging import Page
from server.domain.records import Account
from server.ids import parse_id
from server.ratelimit import rate_limit_headers
from server.services import oauth as oauth_service
from server.services import scopes as scope_rules
from server.services.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    ServiceError,
    TooMany,
    Unauthorized,
    Unprocessable,
)
from server.state import State

STATE = web.AppKey("state", State)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_encoder = msgspec.json.Encoder()
TRUE = {"1", "true", "on", "yes", "t"}
FALSE = {"0", "false", "off", "no", "f", ""}


def state_of(request: web.Request) -> State:
    return request.app[STATE]


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None,
                  content_type: str = "application/json") -> web.Response:
    return web.Response(body=_encoder.encode(data), status=status, headers=headers,
                        content_type=content_type, charset="utf-8")


def encoded_json_response(body: bytes, headers: dict[str, str] | None = None) -> web.Response:
    """An answer whose JSON is already encoded: a page of statuses spliced from kept fragments, sent
    as it is (encoding it again would copy it)."""
    return web.Response(body=body, headers=headers, content_type="application/json", charset="utf-8")


# Params has methods named str, int, bool, list and dict (the lenient readers clients need); inside the
# class those names are the methods, so its annotations use these aliases of the built-in types.
Text = str
Int = int
Bool = bool
List = list
Dict = dict


class Params:
    """Query string and body (form, multipart or JSON) merged; body wins. `key[]` and `key` both work."""

    def __init__(self, values: MultiDict[Any], json_body: Dict[Text, Any] | None = None) -> None:
        self._values = values
        self._json = json_body or {}

    def _raw(self, name: Text) -> Any:
        if name in self._json:
            return self._json[name]
        if name in self._values:
            return self._values.getone(name)
        return None

    def has(self, name: Text) -> Bool:
        return name in self._json or name in self._values or f"{name}[]" in self._values

    def str(self, name: Text, default: Text | None = None) -> Text | None:
        value = self._raw(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float | str):
            return str(value)
        raise Unprocessable(f"{name} must be a string")

    def text(self, name: Text, default: Text = "") -> Text:
        value = self.str(name)
        return default if value is None else value

    def bool(self, name: Text, default: Bool | None = None) -> Bool | None:
        value = self._raw(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in TRUE:
            return True
        if text in FALSE:
            return False
        raise Unprocessable(f"{name} must be true or false")

    def int(self, name: Text, default: Int | None = None) -> Int | None:
        value = self._raw(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            raise Unprocessable(f"{name} must be a number")
        try:
            return int(str(value).strip())
        except ValueError:
            raise Unprocessable(f"{name} must be a number") from None

    def id(self, name: Text) -> Int | None:
        """An id parameter; ids are decimal strings, anything else can match nothing."""
        value = self._raw(name)
        if value is None or value == "":
            return None
        parsed = None if isinstance(value, bool) else parse_id(str(value))
        if parsed is None:
            raise Unprocessable(f"{name} is not a valid id")
        return parsed

    def ids(self, name: Text) -> List[Int]:
        """A list of ids (`name[]=1&name[]=2` or a JSON array); one bad entry refuses the request."""
        out = []
        for value in self.list(name):
            parsed = None if isinstance(value, bool) else parse_id(str(value))
            if parsed is None:
                raise Unprocessable(f"{name} contains an invalid id")
            out.append(parsed)
        return out

    def list(self, name: Text) -> List[Any]:
        for key in (name, f"{name}[]"):
            if key in self._json:
                value = self._json[key]
                return value if isinstance(value, list) else [value]
        values = self._values.getall(f"{name}[]", []) or self._values.getall(name, [])
        # Indexed form keys: name[0]=a&name[1]=b
        if not values:
            indexed = sorted((k, v) for k, v in self._values.items() if k.startswith(f"{name}[") and k[len(name) + 1:-1].isdigit())
            values = [v for _, v in indexed]
        return list(values)

    def dict(self, name: Text) -> Dict[Text, Any]:
        """Nested parameters: JSON objects or form keys like source[privacy]."""
        value = self._json.get(name)
        if isinstance(value, dict):
            return value
        prefix = f"{name}["
        out: dict[str, Any] = {}
        for key, val in self._values.items():
            if key.startswith(prefix) and key.endswith("]"):
                out[key[len(prefix):-1]] = val
        return out

    def file(self, name: Text) -> IO[bytes] | None:
        """An uploaded file's contents (multipart form); None when not sent or sent empty."""
        value = self._values.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, web.FileField):
            raise Unprocessable(f"{name} must be an uploaded file")
        return value.file

    def items(self) -> Iterable[tuple[Text, Any]]:
        yield from self._values.items()
        yield from self._json.items()


MAX_BODY = 16 * 1024 * 1024


async def params(request: web.Request) -> Params:
    values: MultiDict[Any] = MultiDict(request.query)
    json_body = None
    if request.method in ("POST", "PUT", "PATCH", "DELETE") and request.can_read_body:
        ctype = request.content_type
        if ctype == "application/json" or ctype.endswith("+json"):
            raw = await request.read()
            if raw.strip():
                try:
                    json_body = msgspec.json.decode(raw)
                except msgspec.DecodeError:
                    raise BadRequest("Invalid JSON body") from None
                if not isinstance(json_body, dict):
                    raise Unprocessable("The JSON body must be an object")
        elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key, value in form.items():
                values.add(key, value)
    return Params(values, json_body)


async def credentials(request: web.Request) -> oauth_service.Credentials | None:
    if "credentials" in request:
        return request["credentials"]
    header = request.headers.get("Authorization", "")
    token = None
    if header[:7].lower() == "bearer ":
        token = header[7:].strip()
    elif "access_token" in request.query and request.path.startswith("/api/v1/streaming"):
        token = request.query["access_token"]
    creds = None
    if token:
        creds = await oauth_service.credentials_for(state_of(request), token)
        if creds is None:
            raise Unauthorized("The access token is invalid")
    request["credentials"] = creds
    return creds


def check_scopes(creds: oauth_service.Credentials, scopes: tuple[str, ...]) -> None:
    if scopes and not any(scope_rules.grants(creds.scopes, s) for s in scopes):
        raise Forbidden("This action is outside the authorized scopes")


async def _user_credentials(request: web.Request, scopes: tuple[str, ...]) -> oauth_service.Credentials:
    """The credentials of a token that belongs to an account and carries one of `scopes`."""
    creds = await credentials(request)
    if creds is None:
        raise Unauthorized("The access token is invalid")
    check_scopes(creds, scopes)
    if creds.account_id is None:
        raise Unprocessable("This method requires an authenticated user")
    return creds


async def require_user(request: web.Request, *scopes: str) -> Account:
    """The signed-in account behind the token, which must carry one of `scopes`."""
    account = await oauth_service.account_of(state_of(request), await _user_credentials(request, scopes))
    if account is None:
        raise Unauthorized("The access token is invalid")
    return account


async def require_user_id(request: web.Request, *scopes: str) -> int:
    """The id of the signed-in account behind the token, which must carry one of `scopes`, for handlers
    that need no more of the caller than who it is: no query when the token is in the token cache
    (the credentials were checked against the account, its user and their access when cached, and any
    change to them invalidates the cache; local account rows are never deleted, only scrubbed)."""
    creds = await _user_credentials(request, scopes)
    assert creds.account_id is not None  # checked by _user_credentials
    return creds.account_id


async def optional_user_id(request: web.Request, *scopes: str) -> int | None:
    """The id of the caller if a user token came with the request (anonymous access is allowed), for
    handlers that need no more of the caller than who it is: as `require_user_id`, no query when the
    token is in the token cache."""
    creds = await credentials(request)
    if creds is None or creds.account_id is None:
        return None
    check_scopes(creds, scopes)
    return creds.account_id


async def optional_user(request: web.Request, *scopes: str) -> Account | None:
    """The caller if a user token came with the request; anonymous access is allowed."""
    creds = await credentials(request)
    if creds is None or creds.account_id is None:
        return None
    check_scopes(creds, scopes)
    return await oauth_service.account_of(state_of(request), creds)


def page(p: Params, default: int = 20, maximum: int = 40) -> Page:
    limit = p.int("limit", default) or default
    return Page(max_id=p.id("max_id"), since_id=p.id("since_id"), min_id=p.id("min_id"),
                limit=max(1, min(limit, maximum)))


def link_header(request: web.Request, ids: list[int]) -> dict[str, str]:
    """`Link` with next (older) and prev (newer) pages, keeping the other query parameters."""
    if not ids:
        return {}
    base = state_of(request).base_url + request.path
    kept = urlencode([(k, v) for k, v in request.query.items() if k not in ("max_id", "since_id", "min_id")])
    kept = kept + "&" if kept else ""  # ids need no quoting
    older = f"{kept}max_id={min(ids)}"
    newer = f"{kept}min_id={max(ids)}"
    return {"Link": f'<{base}?{older}>; rel="next", <{base}?{newer}>; rel="prev"'}


def path_id(request: web.Request, name: str = "id") -> int:
    """The id in the route; one that cannot be ours is simply not found (as in Mastodon)."""
    parsed = parse_id(request.match_info.get(name, ""))
    if parsed is None:
        raise NotFound()
    return parsed


def error_response(exc: ServiceError) -> web.Response:
    body: dict[str, Any] = {"error": exc.message}
    if exc.description:
        body["error_description"] = exc.description
    response = json_response(body, status=exc.status)
    if isinstance(exc, TooMany):
        response.headers.update(rate_limit_headers(exc.limit, 0, exc.reset_at))
        response.headers["Retry-After"] = str(max(1, math.ceil(exc.reset_at - time.time())))
    return response


def add_routes(app: web.Application, routes: Iterable[tuple[str, str, Handler]]) -> None:
    """Register each route with and without a trailing slash: clients use both, and a redirect
    would turn a POST into a GET.

    A path's methods share one resource, and the other spellings come after every path as written:
    aiohttp tries the resources under a path's fixed prefix (`/api/v1/statuses/{id}/...`) one by one
    in the order they came, a regular expression each, and the order of the calls had put both
    spellings of every method of every route before `/context` (twelve tries, 4 us a request)."""
    resources: dict[str, web.Resource] = {}
    written = list(routes)
    others = [(method, path[:-1] if path.endswith("/") else path + "/", handler)
              for method, path, handler in written if path != "/"]
    for method, path, handler in written + others:
        resource = resources.get(path)
        if resource is None:
            resource = resources[path] = app.router.add_resource(path)
        resource.add_route(method, handler)

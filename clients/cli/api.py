"""A small typed async client for the Mastodon API, shared by every xtalk command.

Entities come back as plain dicts decoded by msgspec, so `--json` can print exactly what the server sent;
the few shapes the client itself depends on (app registration, token answers) are msgspec Structs.
Errors are typed by class (network, auth, not found, validation, rate limit, server) so the CLI can map
each class to one exit code.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import mimetypes
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp
import msgspec

OOB = "urn:ietf:wg:oauth:2.0:oob"
SCOPES = "read write follow"
USER_AGENT = "xtalk/0.1 (+Crosstalk command-line client)"

Entity = dict[str, Any]


# -- errors ----------------------------------------------------------------------------------------

class ApiError(Exception):
    """Base of every failure the client reports; `exit_code` is the CLI's code for the class."""

    exit_code = 1
    kind = "error"

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.code = ""  # OAuth error code (invalid_grant, ...) when the server sent one


class NetworkError(ApiError):
    exit_code = 3
    kind = "network"


class AuthError(ApiError):
    """401 (token missing, expired or revoked) or 403 (token lacks the scope, or the action is forbidden)."""
    exit_code = 4
    kind = "auth"


class NotFoundError(ApiError):
    exit_code = 5
    kind = "not found"


class ValidationError(ApiError):
    """422 or 400: the server understood the request and refused it; `message` is the server's text."""
    exit_code = 6
    kind = "validation"


class RateLimitedError(ApiError):
    exit_code = 7
    kind = "rate limited"


class ServerError(ApiError):
    exit_code = 8
    kind = "server"


def _server_message(body: bytes) -> tuple[str, str]:
    """(human message, OAuth error code or "") from an error body."""
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        text = body.decode("utf-8", "replace").strip()
        return (text[:200] if text and not text.startswith("<") else ""), ""
    if isinstance(data, dict):
        code = str(data.get("error") or "")
        return str(data.get("error_description") or code), code if data.get("error_description") else ""
    return "", ""


def retry_after_seconds(headers: Any, now: float | None = None) -> float | None:
    """Seconds until a rate limit resets, from Retry-After (seconds or HTTP date) or X-RateLimit-Reset."""
    now = time.time() if now is None else now
    value = headers.get("Retry-After")
    if value:
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - now)
        except (TypeError, ValueError):
            pass
    reset = headers.get("X-RateLimit-Reset")
    if reset:
        from datetime import datetime
        try:
            return max(0.0, datetime.fromisoformat(reset.replace("Z", "+00:00")).timestamp() - now)
        except ValueError:
            return None
    return None


def error_for(status: int, body: bytes, headers: Any) -> ApiError:
    message, code = _server_message(body)
    error = _classify(status, message, headers)
    error.code = code
    return error


def _classify(status: int, message: str, headers: Any) -> ApiError:
    if status == 401:
        return AuthError(message or "Unauthorized", status)
    if status == 403:
        return AuthError(message or "Forbidden", status)
    if status in (404, 410):
        return NotFoundError(message or "Record not found", status)
    if status == 429:
        return RateLimitedError(message or "Too many requests", status, retry_after_seconds(headers))
    if status >= 500:
        return ServerError(message or f"HTTP {status}", status)
    return ValidationError(message or f"HTTP {status}", status)


# -- typed answers ---------------------------------------------------------------------------------

class AppRegistration(msgspec.Struct):
    client_id: str
    client_secret: str
    id: str | None = None
    name: str | None = None


class TokenAnswer(msgspec.Struct):
    access_token: str
    token_type: str = "Bearer"
    scope: str = ""
    created_at: int = 0


class Response(msgspec.Struct):
    data: Any
    status: int
    links: dict[str, str]


_LINK = re.compile(r'<([^>]*)>\s*;\s*rel="?([^";]+)"?')


def parse_links(header: str | None) -> dict[str, str]:
    """Link header → {"next": url, "prev": url}."""
    links: dict[str, str] = {}
    for url, rels in _LINK.findall(header or ""):
        for rel in rels.split():
            links[rel] = url
    return links


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def normalise_base_url(url: str) -> str:
    """'social.example.org' or 'https://social.example.org/' → 'https://social.example.org'."""
    url = url.strip()
    if "://" not in url:
        url = "https://" + url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an instance URL: {url}")
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def stream_payload(payload: Any) -> Any:
    """Streaming payloads are JSON encoded inside the JSON message (except bare ids); decode either form."""
    if isinstance(payload, str):
        stripped = payload.strip()
        if stripped.startswith(("{", "[")):
            try:
                return json.loads(stripped)
            except ValueError:
                return payload
    return payload


# -- the client ------------------------------------------------------------------------------------

Notice = Callable[[str], None]


class Client:
    """`async with Client(base_url, token) as api: await api.get("/api/v1/...")`.

    With `wait_on_rate_limit`, a 429 sleeps until the limit resets (announced through `notice`) and retries.
    """

    def __init__(self, base_url: str, token: str | None = None, *, wait_on_rate_limit: bool = False,
                 notice: Notice | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.wait_on_rate_limit = wait_on_rate_limit
        self.notice = notice or (lambda _message: None)
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 10.0))
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Client:
        self._session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT}, timeout=self._timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("Client used outside `async with`")
        return self._session

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        headers.update(extra or {})
        return headers

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    async def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                      json_body: Any = None, form: dict[str, Any] | None = None,
                      data: aiohttp.FormData | Callable[[], aiohttp.FormData] | None = None,
                      headers: dict[str, str] | None = None) -> Response:
        attempts = 0
        while True:
            attempts += 1
            body: Any = data() if callable(data) else data
            if form is not None:
                body = form
            try:
                async with self.session.request(method, self.url(path), params=_query(params), json=json_body,
                                                data=body, headers=self._headers(headers),
                                                allow_redirects=True) as resp:
                    raw = await resp.read()
                    if resp.status >= 400:
                        error = error_for(resp.status, raw, resp.headers)
                        if (isinstance(error, RateLimitedError) and self.wait_on_rate_limit and attempts <= 5):
                            delay = max(1.0, error.retry_after if error.retry_after is not None else 5.0)
                            self.notice(f"Rate limited; waiting {delay:.0f} s for the limit to reset…")
                            await asyncio.sleep(delay)
                            continue
                        raise error
                    decoded = msgspec.json.decode(raw) if raw.strip() else None
                    return Response(data=decoded, status=resp.status, links=parse_links(resp.headers.get("Link")))
            except msgspec.DecodeError:
                raise ServerError(f"{method} {path}: the server did not answer with JSON") from None
            except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.InvalidURL) as exc:
                raise NetworkError(_network_reason(self.base_url, exc)) from None

    async def get(self, path: str, **params: Any) -> Any:
        return (await self.request("GET", path, params=params)).data

    async def post(self, path: str, form: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return (await self.request("POST", path, json_body=form if form is not None else {}, **kwargs)).data

    async def pages(self, path: str, params: dict[str, Any] | None = None, *,
                    all_pages: bool = False) -> AsyncIterator[list[Any]]:
        """Yield one page after another, following the `Link: rel="next"` header while `all_pages`."""
        resp = await self.request("GET", path, params=params)
        while True:
            items = resp.data if isinstance(resp.data, list) else []
            yield items
            nxt = resp.links.get("next")
            if not all_pages or not nxt or not items:
                return
            resp = await self.request("GET", nxt)

    # -- OAuth ---------------------------------------------------------------------------------------

    async def register_app(self, redirect_uri: str = OOB, name: str = "xtalk") -> AppRegistration:
        data = await self.post("/api/v1/apps", {"client_name": name, "redirect_uris": redirect_uri,
                                                "scopes": SCOPES, "website": None})
        return msgspec.convert(data, AppRegistration)

    def authorize_url(self, app: AppRegistration, redirect_uri: str, challenge: str, state: str | None = None) -> str:
        query = {"client_id": app.client_id, "redirect_uri": redirect_uri, "response_type": "code",
                 "scope": SCOPES, "code_challenge": challenge, "code_challenge_method": "S256"}
        if state:
            query["state"] = state
        return f"{self.base_url}/oauth/authorize?{urlencode(query)}"

    async def token_from_code(self, app: AppRegistration, code: str, redirect_uri: str,
                              verifier: str | None) -> TokenAnswer:
        form = {"grant_type": "authorization_code", "code": code, "client_id": app.client_id,
                "client_secret": app.client_secret, "redirect_uri": redirect_uri, "scope": SCOPES}
        if verifier:
            form["code_verifier"] = verifier
        return msgspec.convert(await self.post("/oauth/token", form), TokenAnswer)

    async def token_from_password(self, app: AppRegistration, username: str, password: str) -> TokenAnswer:
        form = {"grant_type": "password", "username": username, "password": password,
                "client_id": app.client_id, "client_secret": app.client_secret, "scope": SCOPES}
        return msgspec.convert(await self.post("/oauth/token", form), TokenAnswer)

    async def revoke(self, client_id: str | None, client_secret: str | None) -> None:
        form = {"token": self.token, "client_id": client_id, "client_secret": client_secret}
        await self.post("/oauth/revoke", {k: v for k, v in form.items() if v})

    # -- accounts ------------------------------------------------------------------------------------

    async def verify_credentials(self) -> Entity:
        return await self.get("/api/v1/accounts/verify_credentials")

    async def find_account(self, handle: str) -> Entity:
        """@user or @user@domain → the account, looked up locally first, then through search (resolves
        remote accounts the server has not seen yet)."""
        acct = handle.strip().lstrip("@")
        if not acct:
            raise ValidationError("an account handle like @user@domain is needed")
        try:
            return await self.get("/api/v1/accounts/lookup", acct=acct)
        except NotFoundError:
            if "@" not in acct:
                raise
        found = await self.search(acct, kind="accounts", resolve=True, limit=5)
        wanted = acct.lower()
        for account in found.get("accounts", []):
            if str(account.get("acct", "")).lower() == wanted:
                return account
        raise NotFoundError(f"no account @{acct}")

    async def relationship(self, account_id: str) -> Entity | None:
        rels = await self.get("/api/v1/accounts/relationships", **{"id[]": account_id})
        return rels[0] if rels else None

    async def account_action(self, account_id: str, action: str) -> Entity:
        return await self.post(f"/api/v1/accounts/{account_id}/{action}")

    # -- statuses ------------------------------------------------------------------------------------

    async def status(self, status_id: str) -> Entity:
        return await self.get(f"/api/v1/statuses/{status_id}")

    async def context(self, status_id: str) -> Entity:
        return await self.get(f"/api/v1/statuses/{status_id}/context")

    async def status_source(self, status_id: str) -> Entity:
        return await self.get(f"/api/v1/statuses/{status_id}/source")

    async def post_status(self, text: str, *, in_reply_to_id: str | None = None, visibility: str | None = None,
                          spoiler_text: str | None = None, media_ids: list[str] | None = None,
                          sensitive: bool | None = None, language: str | None = None,
                          idempotency_key: str | None = None) -> Entity:
        body: dict[str, Any] = {"status": text}
        if in_reply_to_id:
            body["in_reply_to_id"] = in_reply_to_id
        if visibility:
            body["visibility"] = visibility
        if spoiler_text:
            body["spoiler_text"] = spoiler_text
        if media_ids:
            body["media_ids"] = media_ids
        if sensitive is not None:
            body["sensitive"] = sensitive
        if language:
            body["language"] = language
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return await self.post("/api/v1/statuses", body, headers=headers)

    async def edit_status(self, status_id: str, text: str, *, spoiler_text: str | None = None,
                          media_ids: list[str] | None = None) -> Entity:
        body: dict[str, Any] = {"status": text}
        if spoiler_text is not None:
            body["spoiler_text"] = spoiler_text
        if media_ids is not None:
            body["media_ids"] = media_ids
        return (await self.request("PUT", f"/api/v1/statuses/{status_id}", json_body=body)).data

    async def delete_status(self, status_id: str) -> Entity:
        return (await self.request("DELETE", f"/api/v1/statuses/{status_id}")).data

    async def status_action(self, status_id: str, action: str) -> Entity:
        return await self.post(f"/api/v1/statuses/{status_id}/{action}")

    async def upload_media(self, path: Path, description: str | None = None, *,
                           poll_seconds: float = 60.0) -> Entity:
        """POST /api/v2/media (v1 on servers without it); a 202 answer is polled until processed."""
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        content = await asyncio.to_thread(path.read_bytes)

        def form() -> aiohttp.FormData:
            data = aiohttp.FormData()
            data.add_field("file", content, filename=path.name, content_type=mime)
            if description:
                data.add_field("description", description)
            return data

        try:
            resp = await self.request("POST", "/api/v2/media", data=form)
        except NotFoundError:
            resp = await self.request("POST", "/api/v1/media", data=form)
        media = resp.data
        deadline = time.monotonic() + poll_seconds
        while resp.status == 202 or (isinstance(media, dict) and media.get("url") is None):
            if time.monotonic() > deadline:
                raise ServerError(f"the server is still processing {path.name}; try again later")
            await asyncio.sleep(0.5)
            resp = await self.request("GET", f"/api/v1/media/{media['id']}")
            if resp.status == 206:
                continue
            media = resp.data
        return media

    # -- reading ---------------------------------------------------------------------------------------

    async def list_id(self, name: str) -> str:
        lists = await self.get("/api/v1/lists")
        for item in lists:
            if item.get("id") == name or str(item.get("title", "")).lower() == name.lower():
                return str(item["id"])
        raise NotFoundError(f"no list named {name!r}")

    async def search(self, query: str, *, kind: str | None = None, resolve: bool = False,
                     limit: int | None = None) -> Entity:
        params: dict[str, Any] = {"q": query}
        if kind:
            params["type"] = kind
        if resolve and self.token:
            params["resolve"] = "true"
        if limit:
            params["limit"] = limit
        return await self.get("/api/v2/search", **params)

    async def instance(self) -> Entity:
        try:
            return await self.get("/api/v2/instance")
        except NotFoundError:
            return await self.get("/api/v1/instance")

    # -- streaming -------------------------------------------------------------------------------------

    async def streaming_base(self) -> str:
        """The streaming API's base URL, as the instance advertises it (may be another host)."""
        try:
            info = await self.instance()
        except ApiError:
            info = {}
        urls = (info.get("configuration") or {}).get("urls") or info.get("urls") or {}
        url = urls.get("streaming") or urls.get("streaming_api") or ""
        if url:
            parts = urlsplit(url)
            scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
            return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
        return self.base_url

    async def stream(self, stream: str, extra: dict[str, str] | None = None, *,
                     on_connect: Callable[[], None] | None = None) -> AsyncIterator[tuple[str, Any]]:
        """Yield (event, payload) from /api/v1/streaming: WebSocket first, Server-Sent Events if the
        WebSocket cannot be opened. Returns when the server closes the stream."""
        base = await self.streaming_base()
        query = {"stream": stream, **(extra or {})}
        ws_url = base.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        ws_url = f"{ws_url}/api/v1/streaming?{urlencode(query)}"
        try:
            ws = await self.session.ws_connect(ws_url, headers=self._headers(), heartbeat=30.0)
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status in (401, 403):
                raise AuthError("the streaming API refused the token", exc.status) from None
            ws = None
        except (TimeoutError, aiohttp.ClientConnectionError) as exc:
            raise NetworkError(_network_reason(base, exc)) from None
        if ws is not None:
            async with ws:
                if on_connect:
                    on_connect()
                async for msg in ws:
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        if msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSED):
                            break
                        continue
                    try:
                        message = json.loads(msg.data)
                    except ValueError:
                        continue
                    if isinstance(message, dict) and "event" in message:
                        yield str(message["event"]), stream_payload(message.get("payload"))
            return
        async for item in self._sse(base, stream, extra or {}, on_connect):
            yield item

    async def _sse(self, base: str, stream: str, extra: dict[str, str],
                   on_connect: Callable[[], None] | None) -> AsyncIterator[tuple[str, Any]]:
        path = "/api/v1/streaming/" + stream.replace(":", "/")
        url = f"{base}{path}" + (f"?{urlencode(extra)}" if extra else "")
        timeout = aiohttp.ClientTimeout(total=None, sock_read=120.0, connect=10.0)
        try:
            async with self.session.get(url, headers={**self._headers(), "Accept": "text/event-stream"},
                                        timeout=timeout) as resp:
                if resp.status >= 400:
                    raise error_for(resp.status, await resp.read(), resp.headers)
                if on_connect:
                    on_connect()
                event, data_lines = "", list[str]()
                async for raw in resp.content:
                    line = raw.decode("utf-8", "replace").rstrip("\r\n")
                    if not line:
                        if event and data_lines:
                            yield event, stream_payload("\n".join(data_lines))
                        event, data_lines = "", list[str]()
                    elif line.startswith(":"):
                        continue
                    elif line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data_lines.append(line[5:].removeprefix(" "))
        except (TimeoutError, aiohttp.ClientConnectionError) as exc:
            raise NetworkError(_network_reason(base, exc)) from None


def _query(params: dict[str, Any] | None) -> list[tuple[str, str]] | None:
    if not params:
        return None
    out: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        if isinstance(value, list | tuple):
            out.extend((key if key.endswith("[]") else key + "[]", str(v)) for v in value)
        else:
            out.append((key, str(value)))
    return out


def _network_reason(base_url: str, exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"{base_url} did not answer in time"
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = str(exc.os_error.strerror or exc.os_error) if exc.os_error else reason
    return f"cannot reach {base_url}: {reason}"

"""The ways to get a token: out-of-band code, loopback redirect with a browser, password grant, or a token
given outright. Each returns the token and the app credentials (kept so `logout` can revoke)."""

from __future__ import annotations

import asyncio
import secrets
import webbrowser
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from clients.cli.api import OOB, ApiError, AppRegistration, Client, ValidationError, pkce_pair

if TYPE_CHECKING:
    from aiohttp import web

CALLBACK_PAGE = ("<!doctype html><meta charset=utf-8><title>xtalk</title>"
                 "<p>{message}</p><p>You can close this window and return to the terminal.</p>")


class LoginError(ApiError):
    exit_code = 4
    kind = "auth"


class Callback:
    """A one-shot HTTP server on 127.0.0.1 that receives the authorization redirect.

    The `state` value guards against a stray or forged request finishing someone else's login.
    """

    def __init__(self, state: str, host: str = "127.0.0.1") -> None:
        self.state = state
        self.host = host
        self.port = 0
        self.result: asyncio.Future[str] | None = None
        self._runner: web.AppRunner | None = None

    @property
    def redirect_uri(self) -> str:
        return f"http://{self.host}:{self.port}/callback"

    async def start(self) -> None:
        from aiohttp import web  # the server half of aiohttp is only needed here; keeps start-up quick

        self.result = asyncio.get_running_loop().create_future()
        app = web.Application()
        app.router.add_get("/callback", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        from aiohttp import web

        assert self.result is not None
        query = request.query
        if query.get("state") != self.state:
            return web.Response(status=400, content_type="text/html",
                                text=CALLBACK_PAGE.format(message="This answer does not belong to the login "
                                                                  "in progress (state mismatch)."))
        if self.result.done():
            return web.Response(content_type="text/html", text=CALLBACK_PAGE.format(message="Already done."))
        if "error" in query:
            reason = query.get("error_description") or query["error"]
            self.result.set_exception(LoginError(f"authorization refused: {reason}"))
            return web.Response(content_type="text/html", text=CALLBACK_PAGE.format(message="Authorization refused."))
        code = query.get("code", "")
        if not code:
            return web.Response(status=400, content_type="text/html",
                                text=CALLBACK_PAGE.format(message="No authorization code in the answer."))
        self.result.set_result(code)
        return web.Response(content_type="text/html", text=CALLBACK_PAGE.format(message="xtalk is now authorized."))

    async def wait(self, seconds: float) -> str:
        assert self.result is not None
        try:
            return await asyncio.wait_for(asyncio.shield(self.result), seconds)
        except TimeoutError:
            raise LoginError(f"no answer from the browser within {seconds:.0f} s") from None


async def login_oob(api: Client, stdin: TextIO, stderr: TextIO) -> tuple[str, AppRegistration]:
    """Print the authorization URL; the user approves in any browser and pastes the code shown there."""
    app = await api.register_app(OOB)
    verifier, challenge = pkce_pair()
    url = api.authorize_url(app, OOB, challenge)
    stderr.write("Open this address in a browser, sign in and approve xtalk:\n\n"
                 f"  {url}\n\nPaste the code: ")
    stderr.flush()
    code = stdin.readline().strip()
    if not code:
        raise LoginError("no authorization code given")
    token = await api.token_from_code(app, code, OOB, verifier)
    return token.access_token, app


async def login_browser(api: Client, stderr: TextIO, wait_seconds: float = 300.0,
                        open_browser: Callable[[str], bool] = webbrowser.open) -> tuple[str, AppRegistration]:
    """Authorization-code flow with a loopback redirect (RFC 8252 §7.3) and PKCE."""
    callback = Callback(secrets.token_urlsafe(16))
    await callback.start()
    try:
        app = await api.register_app(callback.redirect_uri)
        verifier, challenge = pkce_pair()
        url = api.authorize_url(app, callback.redirect_uri, challenge, state=callback.state)
        opened = False
        try:
            opened = await asyncio.get_running_loop().run_in_executor(None, open_browser, url)
        except Exception:  # noqa: BLE001 - any failure to launch just means "print the URL instead"
            opened = False
        if opened:
            stderr.write("Waiting for the browser… (if none opened, visit this address)\n\n")
        else:
            stderr.write("Open this address in a browser, sign in and approve xtalk:\n\n")
        stderr.write(f"  {url}\n\n")
        stderr.flush()
        code = await callback.wait(wait_seconds)
    finally:
        await callback.stop()
    token = await api.token_from_code(app, code, callback.redirect_uri, verifier)
    return token.access_token, app


async def login_password(api: Client, username: str, password: str) -> tuple[str, AppRegistration]:
    app = await api.register_app(OOB)
    try:
        token = await api.token_from_password(app, username, password)
    except ValidationError as exc:
        if exc.code == "unsupported_grant_type":
            raise LoginError("this server does not allow password login; use `xtalk login URL` "
                             "(browser code) instead") from None
        raise LoginError(f"login refused: {exc.message}") from None
    return token.access_token, app

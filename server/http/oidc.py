"""Single sign-on pages: the start of a sign-in at the identity provider, the way back from it, the
username choice at a first sign-in, and logout (which ends the provider's session too).

The Mastodon authorize page (server/http/oauth.py) offers the sign-in button; a finished sign-in
sets the same web session cookie as the password form and returns to that authorize page, so every
Mastodon app's OAuth flow works unchanged.
"""

from __future__ import annotations

import secrets

from aiohttp import web

from server.http.base import add_routes, state_of
from server.http.oauth import CSRF_COOKIE, SESSION_COOKIE
from server.http.web import render_page
from server.services import oidc as service
from server.services.errors import ServiceError
from server.services.secrets import same

SIGNUP_COOKIE = "crosstalk_signup"
def _message(request: web.Request, title: str, message: str, status: int,
             retry_url: str | None = None) -> web.Response:
    return render_page(request, "message.html", title=title, http_status=status, message=message,
                       error=status >= 400, retry_url=retry_url)


def _secure(request: web.Request) -> bool:
    return state_of(request).settings.scheme == "https"


def _enabled(request: web.Request) -> None:
    if not state_of(request).settings.oidc.enabled:
        raise web.HTTPNotFound()


async def start(request: web.Request) -> web.Response:
    _enabled(request)
    return_to = service.safe_return_path(request.query.get("return_to"))
    try:
        url = await service.begin(state_of(request), return_to)
    except service.ProviderUnavailable as exc:
        return _message(request, "Sign-in unavailable", f"The identity provider cannot be reached right now ({exc.message}). "
                        "Please try again in a few minutes.", 502, retry_url=return_to)
    raise web.HTTPFound(url)


async def callback(request: web.Request) -> web.Response:
    _enabled(request)
    st = state_of(request)
    q = request.query
    try:
        outcome = await service.finish(st, login_state=q.get("state"), code=q.get("code"), error=q.get("error"),
                                       error_description=q.get("error_description"), address=request.remote)
    except service.ProviderUnavailable as exc:
        return _message(request, "Sign-in unavailable", f"The identity provider cannot be reached right now ({exc.message}). "
                        "Please try again in a few minutes.", 502, retry_url="/auth/oidc/start")
    except ServiceError as exc:
        return _message(request, "Sign-in refused", exc.message, 403)
    if outcome.signup is not None:
        response = web.HTTPFound("/auth/oidc/username")
        response.set_cookie(SIGNUP_COOKIE, outcome.signup, max_age=int(service.SIGNUP_SECONDS), httponly=True,
                            samesite="Lax", path="/auth/oidc", secure=_secure(request))
        raise response
    return await _signed_in(request, outcome)


async def _signed_in(request: web.Request, outcome: service.Outcome) -> web.Response:
    session = await service.start_session(state_of(request), outcome)
    response = web.HTTPFound(outcome.return_to)
    response.set_cookie(SESSION_COOKIE, session, max_age=service.SESSION_SECONDS, httponly=True, samesite="Lax",
                        secure=_secure(request))
    response.del_cookie(SIGNUP_COOKIE, path="/auth/oidc")
    raise response


def _csrf(request: web.Request) -> str:
    return request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)


def _username_form(request: web.Request, suggestion: str, error: str = "") -> web.Response:
    csrf = _csrf(request)
    response = render_page(request, "choose_username.html", http_status=422 if error else 200,
                           title="Choose your username",
                    domain=state_of(request).domain, suggestion=suggestion, error=error, csrf=csrf)
    response.set_cookie(CSRF_COOKIE, csrf, httponly=True, samesite="Lax", path="/auth/oidc", secure=_secure(request))
    return response


async def username_page(request: web.Request) -> web.Response:
    _enabled(request)
    try:
        suggestion, _ = await service.pending_signup(state_of(request), request.cookies.get(SIGNUP_COOKIE, ""))
    except ServiceError as exc:
        return _message(request, "Sign-in expired", exc.message, 403, retry_url="/auth/oidc/start")
    return _username_form(request, suggestion)


async def username_submit(request: web.Request) -> web.Response:
    _enabled(request)
    st = state_of(request)
    form = await request.post()
    cookie_token = request.cookies.get(CSRF_COOKIE, "")
    if not cookie_token or not same(cookie_token, str(form.get("authenticity_token", ""))):
        return _message(request, "Sign-in refused", "The form expired or was not submitted from this site. Please reload "
                        "the page and try again.", 403)
    username = str(form.get("username", ""))
    try:
        outcome = await service.complete_signup(st, request.cookies.get(SIGNUP_COOKIE, ""), username, request.remote)
    except service.LoginRefused as exc:
        return _message(request, "Sign-in refused", exc.message, 403)
    except ServiceError as exc:
        return _username_form(request, username, exc.message.removeprefix("Validation failed: "))
    return await _signed_in(request, outcome)


async def sign_out(request: web.Request) -> web.Response:
    """End the Crosstalk session, then the provider's (RP-initiated logout) when it was an SSO one."""
    st = state_of(request)
    via_provider = await service.end_session(st, request.cookies.get(SESSION_COOKIE), request.remote)
    target = await service.end_session_url(st, st.base_url + "/auth/signed_out") if via_provider else None
    response = (web.HTTPFound(target) if target else
                _message(request, "Signed out", "You are signed out of Crosstalk.", 200))
    response.del_cookie(SESSION_COOKIE)
    if isinstance(response, web.HTTPFound):
        raise response
    return response


async def signed_out(request: web.Request) -> web.Response:
    return _message(request, "Signed out", "You are signed out of Crosstalk and of your organisation's sign-in.", 200)


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("GET", "/auth/oidc/start", start),
        ("GET", "/auth/oidc/callback", callback),
        ("GET", "/auth/oidc/username", username_page),
        ("POST", "/auth/oidc/username", username_submit),
        ("GET", "/auth/sign_out", sign_out),
        ("POST", "/auth/sign_out", sign_out),
        ("DELETE", "/auth/sign_out", sign_out),
        ("GET", "/auth/signed_out", signed_out),
    ])

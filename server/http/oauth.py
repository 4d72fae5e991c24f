"""OAuth endpoints: app registration, the authorize page (login + consent), token, revoke."""

from __future__ import annotations

import base64
import math
import secrets
import time
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

from aiohttp import web

from server.http.base import add_routes, credentials, json_response, params, state_of
from server.http.web import render_page
from server.services import accounts as account_service
from server.services import audit
from server.services import oauth as service
from server.services.errors import TooMany, Unauthorized
from server.services.scopes import GRANULAR, TOP_LEVEL
from server.services.secrets import same

SESSION_COOKIE = "crosstalk_session"
CSRF_COOKIE = "crosstalk_csrf"
SESSION_SECONDS = 14 * 24 * 3600
AUTH_FIELDS = ("client_id", "redirect_uri", "scope", "state", "response_type", "code_challenge",
               "code_challenge_method", "force_login", "lang")


def _app_json(app: object, secret: str | None = None) -> dict[str, object]:
    uris = app.redirect_uris.split("\n")  # type: ignore[attr-defined]
    data: dict[str, object] = {
        "id": str(app.id), "name": app.name, "website": app.website,  # type: ignore[attr-defined]
        "scopes": app.scopes.split(), "redirect_uri": "\n".join(uris), "redirect_uris": uris,  # type: ignore[attr-defined]
        "vapid_key": "", "client_id": app.client_id,  # type: ignore[attr-defined]
    }
    if secret is not None:
        data["client_secret"] = secret
        data["client_secret_expires_at"] = 0
    return data


async def create_app(request: web.Request) -> web.Response:
    st = state_of(request)
    p = await params(request)
    uris = p.list("redirect_uris")
    app, secret = await service.register_app(st, name=p.text("client_name"), redirect_uris=[str(u) for u in uris],
                                             scopes=p.str("scopes"), website=p.str("website"))
    return json_response(_app_json(app, secret))


async def verify_app(request: web.Request) -> web.Response:
    st = state_of(request)
    creds = await credentials(request)
    if creds is None or creds.token.app_id is None:
        raise Unauthorized("The access token is invalid")
    app = await service.app_of(st, creds)
    if app is None:
        raise Unauthorized("The access token is invalid")
    data = _app_json(app)
    data.pop("client_id")
    return json_response(data)


# -- the authorize page ---------------------------------------------------------------------------

async def _session_account(request: web.Request) -> int | None:
    sid = request.cookies.get(SESSION_COOKIE)
    if not sid:
        return None
    return await service.session_account(state_of(request), sid)


def _message(request: web.Request, title: str, message: str, status: int) -> web.Response:
    return render_page(request, "message.html", title=title, message=message, http_status=status)


def _csrf(request: web.Request) -> str:
    return request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)


def _clean(value: str | None) -> str | None:
    """Mastodon.py sends literal "None"/"False" for unset options."""
    return None if value in (None, "", "None", "null") else value


def _form(request: web.Request, fields: dict[str, str], csrf: str, app_name: str, scopes: list[str],
          login: bool, error: str = "", status: int | None = None) -> web.Response:
    """The login/consent form; with an error it answers 422 unless another status is given. With single
    sign-on it offers the identity provider's button (coming back to this very page), and with local
    passwords switched off nothing else is asked before signing in."""
    settings = state_of(request).settings
    shown = {k: v for k, v in fields.items() if v is not None}
    sso = None
    if login and settings.oidc.enabled:
        sso = {"return_to": "/oauth/authorize?" + urlencode(shown), "label": settings.oidc.button_label}
    response = render_page(request, "authorize.html", title="Authorize", http_status=status or (422 if error else 200),
                           app_name=app_name, scopes=scopes, csrf=csrf, login=login, error=error, fields=shown,
                           local_passwords=settings.auth.local_passwords, sso=sso,
                           sso_only=sso is not None and not settings.auth.local_passwords)
    response.set_cookie(CSRF_COOKIE, csrf, httponly=True, samesite="Lax", path="/oauth",
                        secure=state_of(request).settings.scheme == "https")
    return response


async def authorize_page(request: web.Request) -> web.Response:
    st = state_of(request)
    q = request.query
    try:
        app = await service.find_app(st, q.get("client_id"))
        _uri, scopes = service.check_authorize_request(app, q.get("redirect_uri"), q.get("scope"))
    except service.OAuthError as exc:
        return _message(request, "Authorization error", exc.description or exc.message, 400)
    fields = {k: q[k] for k in AUTH_FIELDS if k in q}
    force = (_clean(q.get("force_login")) or "").lower() in ("true", "1")
    signed_in = None if force else await _session_account(request)
    return _form(request, fields, _csrf(request), app.name, scopes, login=signed_in is None)


def _redirect_with(uri: str, values: dict[str, str]) -> str:
    parts = urlsplit(uri)
    query = (parts.query + "&" if parts.query else "") + urlencode(values)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


async def authorize_submit(request: web.Request) -> web.Response:
    st = state_of(request)
    form = await request.post()
    fields = {k: str(form[k]) for k in AUTH_FIELDS if k in form}
    try:
        app = await service.find_app(st, fields.get("client_id"))
        redirect_uri, scopes = service.check_authorize_request(app, fields.get("redirect_uri"), fields.get("scope"))
    except service.OAuthError as exc:
        return _message(request, "Authorization error", exc.description or exc.message, 400)
    cookie_token = request.cookies.get(CSRF_COOKIE, "")
    form_token = str(form.get("authenticity_token", ""))
    if not cookie_token or not same(cookie_token, form_token):
        return _message(request, "Authorization error", "The form expired or was not submitted from this site "
                        "(CSRF check failed). Please reload the page and try again.", 403)
    state_param = _clean(fields.get("state"))
    if form.get("decision") == "deny":
        if redirect_uri == service.OOB:
            return _message(request, "Authorization denied", "", 200)
        values = {"error": "access_denied", "error_description": "The resource owner denied the request."}
        if state_param:
            values["state"] = state_param
        raise web.HTTPFound(_redirect_with(redirect_uri, values))

    account_id = None
    new_session = None
    if "username" in form or "password" in form:
        login = str(form.get("username", ""))
        try:
            found = await account_service.sign_in(st, login, str(form.get("password", "")), request.remote)
        except TooMany as exc:
            response = _form(request, fields, cookie_token, app.name, scopes, login=True, status=429,
                             error="Too many failed sign-in attempts. Please wait a while and try again.")
            response.headers["Retry-After"] = str(max(1, math.ceil(exc.reset_at - time.time())))
            return response
        if found is None:
            await audit.record_now(st, audit.Actor(name="anonymous", address=request.remote), "login.failure",
                                   outcome="refused", target=login[:100], detail={"method": "password"})
            return _form(request, fields, cookie_token, app.name, scopes, login=True,
                         error="Invalid e-mail address or password." if st.settings.auth.local_passwords else
                         "Password sign-in is switched off; use single sign-on.")
        await audit.record_now(st, audit.person(found[1].username, found[1].id, request.remote), "login.success",
                               target_type="account", target_id=found[1].id, target=found[1].acct,
                               detail={"method": "password"})
        account_id = found[1].id
        new_session = await service.start_session(st, account_id, SESSION_SECONDS)
    else:
        account_id = await _session_account(request)
        if account_id is None:
            return _form(request, fields, cookie_token, app.name, scopes, login=True,
                         error="Please sign in.")
    account = await account_service.existing(st, account_id)
    code = await service.issue_code(st, app, account, redirect_uri, scopes, _clean(fields.get("code_challenge")),
                                    _clean(fields.get("code_challenge_method")))
    if redirect_uri == service.OOB:
        response = render_page(request, "authorization_code.html", title="Authorization code", code=code)
    else:
        values = {"code": code}
        if state_param:
            values["state"] = state_param
        response = web.Response(status=302, headers={"Location": _redirect_with(redirect_uri, values)})
    if new_session:
        response.set_cookie(SESSION_COOKIE, new_session, max_age=SESSION_SECONDS, httponly=True, samesite="Lax",
                            secure=st.settings.scheme == "https")
    return response


# -- tokens ---------------------------------------------------------------------------------------

def _basic_auth(request: web.Request) -> tuple[str | None, str | None]:
    header = request.headers.get("Authorization", "")
    if header[:6].lower() != "basic ":
        return None, None
    try:
        decoded = base64.b64decode(header[6:].strip()).decode()
    except (ValueError, UnicodeDecodeError):
        return None, None
    client_id, _, secret = decoded.partition(":")
    return unquote(client_id), unquote(secret)


async def token(request: web.Request) -> web.Response:
    st = state_of(request)
    p = await params(request)
    basic_id, basic_secret = _basic_auth(request)
    response = await service.token_grant(
        st, grant_type=p.str("grant_type"), client_id=p.str("client_id") or basic_id,
        client_secret=p.str("client_secret") or basic_secret, code=p.str("code"), redirect_uri=p.str("redirect_uri"),
        code_verifier=p.str("code_verifier"), refresh_token=p.str("refresh_token"), username=p.str("username"),
        password=p.str("password"), scope=_clean(p.str("scope")), address=request.remote)
    data = {"access_token": response.access_token, "token_type": response.token_type, "scope": response.scope,
            "created_at": response.created_at}
    if response.refresh_token:
        data["refresh_token"] = response.refresh_token
    if response.account_id is not None:
        await service.signed_in(st, response.account_id)
    return json_response(data, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


async def revoke(request: web.Request) -> web.Response:
    st = state_of(request)
    p = await params(request)
    basic_id, basic_secret = _basic_auth(request)
    await service.revoke(st, client_id=p.str("client_id") or basic_id,
                         client_secret=p.str("client_secret") or basic_secret, token=p.str("token"),
                         address=request.remote)
    return json_response({})


async def metadata(request: web.Request) -> web.Response:
    """RFC 8414 metadata; only on https, because Mastodon.py refuses http URLs advertised here."""
    st = state_of(request)
    if st.settings.scheme != "https":
        raise web.HTTPNotFound()
    grants = ["authorization_code", "client_credentials", "refresh_token"]
    if st.settings.password_grant and st.settings.auth.local_passwords:
        grants.append("password")
    scopes = sorted(TOP_LEVEL | {f"{k}:{v}" for k, vs in GRANULAR.items() for v in vs})
    return json_response({
        "issuer": st.base_url + "/",
        "service_documentation": "https://docs.joinmastodon.org/",
        "authorization_endpoint": f"{st.base_url}/oauth/authorize",
        "token_endpoint": f"{st.base_url}/oauth/token",
        "revocation_endpoint": f"{st.base_url}/oauth/revoke",
        "app_registration_endpoint": f"{st.base_url}/api/v1/apps",
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": grants,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    })


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("POST", "/api/v1/apps", create_app),
        ("GET", "/api/v1/apps/verify_credentials", verify_app),
        ("GET", "/oauth/authorize", authorize_page),
        ("POST", "/oauth/authorize", authorize_submit),
        ("POST", "/oauth/token", token),
        ("POST", "/oauth/revoke", revoke),
        ("GET", "/.well-known/oauth-authorization-server", metadata),
    ])

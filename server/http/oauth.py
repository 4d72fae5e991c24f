"""OAuth endpoints: app registration, the authorize page (login + consent), token, revoke."""

from __future__ import annotations

import base64
import html
import secrets
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

from aiohttp import web

from server.http.base import add_routes, credentials, json_response, params, state_of
from server.http.web import html_page
from server.ids import now_iso
from server.services import accounts as account_service
from server.services import oauth as service
from server.services.errors import Unauthorized
from server.services.scopes import GRANULAR, TOP_LEVEL
from server.services.secrets import same, token_hash
from server.storage import accounts as account_store
from server.storage import oauth as store

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
    app = await store.app_by_id(st.db, creds.token.app_id)
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
    return await store.session_account(state_of(request).db, token_hash(sid))


def _csrf(request: web.Request) -> str:
    return request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)


def _clean(value: str | None) -> str | None:
    """Mastodon.py sends literal "None"/"False" for unset options."""
    return None if value in (None, "", "None", "null") else value


def _form(request: web.Request, fields: dict[str, str], csrf: str, app_name: str, scopes: list[str],
          login: bool, error: str = "") -> web.Response:
    hidden = "".join(f'<input type="hidden" name="{k}" value="{html.escape(v, quote=True)}">'
                     for k, v in fields.items() if v is not None)
    login_html = (
        '<label>E-mail or username <input name="username" autocomplete="username" required></label>'
        '<label>Password <input name="password" type="password" autocomplete="current-password" required></label>'
        if login else "")
    scope_items = "".join(f"<li><code>{html.escape(s)}</code></li>" for s in scopes)
    body = (f"<h1>Authorize {html.escape(app_name)}</h1>"
            + (f'<p class="error" role="alert">{html.escape(error)}</p>' if error else "")
            + f"<p><strong>{html.escape(app_name)}</strong> asks for access to your account with these permissions:</p>"
            f"<ul>{scope_items}</ul>"
            f'<form method="post" action="/oauth/authorize">{hidden}'
            f'<input type="hidden" name="authenticity_token" value="{html.escape(csrf, quote=True)}">'
            f'{login_html}<button type="submit" name="decision" value="approve">Authorize</button> '
            f'<button type="submit" name="decision" value="deny" formnovalidate>Deny</button></form>')
    response = html_page("Authorize", body, status=422 if error else 200)
    response.set_cookie(CSRF_COOKIE, csrf, httponly=True, samesite="Lax", path="/oauth",
                        secure=state_of(request).config["scheme"] == "https")
    return response


async def authorize_page(request: web.Request) -> web.Response:
    st = state_of(request)
    q = request.query
    try:
        app = await service.find_app(st, q.get("client_id"))
        _uri, scopes = service.check_authorize_request(app, q.get("redirect_uri"), q.get("scope"))
    except service.OAuthError as exc:
        return html_page("Authorization error", f"<h1>Authorization error</h1><p>{html.escape(exc.description or exc.message)}</p>",
                         status=400)
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
        return html_page("Authorization error", f"<h1>Authorization error</h1><p>{html.escape(exc.description or exc.message)}</p>",
                         status=400)
    cookie_token = request.cookies.get(CSRF_COOKIE, "")
    form_token = str(form.get("authenticity_token", ""))
    if not cookie_token or not same(cookie_token, form_token):
        return html_page("Authorization error", "<h1>Authorization error</h1><p>The form expired or was not "
                         "submitted from this site (CSRF check failed). Please reload the page and try again.</p>",
                         status=403)
    state_param = _clean(fields.get("state"))
    if form.get("decision") == "deny":
        if redirect_uri == service.OOB:
            return html_page("Authorization denied", "<h1>Authorization denied</h1>")
        values = {"error": "access_denied", "error_description": "The resource owner denied the request."}
        if state_param:
            values["state"] = state_param
        raise web.HTTPFound(_redirect_with(redirect_uri, values))

    account_id = None
    new_session = None
    if "username" in form or "password" in form:
        found = await account_service.authenticate(st, str(form.get("username", "")), str(form.get("password", "")))
        if found is None:
            return _form(request, fields, cookie_token, app.name, scopes, login=True,
                         error="Invalid e-mail address or password.")
        account_id = found[1].id
        new_session = secrets.token_urlsafe(32)
        async with st.db.transaction() as tx:
            await store.insert_session(tx, token_hash(new_session), account_id, SESSION_SECONDS)
            await account_store.update_user_prefs(tx, account_id, {"last_sign_in_at": now_iso()})
    else:
        account_id = await _session_account(request)
        if account_id is None:
            return _form(request, fields, cookie_token, app.name, scopes, login=True,
                         error="Please sign in.")
    account = await account_store.get(st.db, account_id)
    assert account is not None
    code = await service.issue_code(st, app, account, redirect_uri, scopes, _clean(fields.get("code_challenge")),
                                    _clean(fields.get("code_challenge_method")))
    if redirect_uri == service.OOB:
        response = html_page("Authorization code",
                             "<h1>Authorization code</h1><p>Copy this code and paste it into the application:</p>"
                             f'<p><code id="authorization-code">{html.escape(code)}</code></p>')
    else:
        values = {"code": code}
        if state_param:
            values["state"] = state_param
        response = web.Response(status=302, headers={"Location": _redirect_with(redirect_uri, values)})
    if new_session:
        response.set_cookie(SESSION_COOKIE, new_session, max_age=SESSION_SECONDS, httponly=True, samesite="Lax",
                            secure=st.config["scheme"] == "https")
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
        password=p.str("password"), scope=_clean(p.str("scope")))
    data = {"access_token": response.access_token, "token_type": response.token_type, "scope": response.scope,
            "created_at": response.created_at}
    if response.refresh_token:
        data["refresh_token"] = response.refresh_token
    if response.account_id is not None:
        async with st.db.transaction() as tx:
            await account_store.update_user_prefs(tx, response.account_id, {"last_sign_in_at": now_iso()})
    return json_response(data, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


async def revoke(request: web.Request) -> web.Response:
    st = state_of(request)
    p = await params(request)
    basic_id, basic_secret = _basic_auth(request)
    await service.revoke(st, client_id=p.str("client_id") or basic_id,
                         client_secret=p.str("client_secret") or basic_secret, token=p.str("token"))
    return json_response({})


async def metadata(request: web.Request) -> web.Response:
    """RFC 8414 metadata; only on https, because Mastodon.py refuses http URLs advertised here."""
    st = state_of(request)
    if st.config["scheme"] != "https":
        raise web.HTTPNotFound()
    grants = ["authorization_code", "client_credentials", "refresh_token"]
    if st.config["password_grant"]:
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

"""OAuth 2 as Mastodon does it: apps, authorisation codes (with optional PKCE), tokens, revocation."""

from __future__ import annotations

import base64
import hashlib
import time
from urllib.parse import urlsplit

import msgspec

from server.records import Account, App, Token
from server.services import accounts as account_service
from server.services import scopes as scope_rules
from server.services.errors import ServiceError, Unprocessable
from server.services.secrets import new_token, same, token_hash
from server.state import State
from server.storage import accounts as account_store
from server.storage import oauth as store

OOB = "urn:ietf:wg:oauth:2.0:oob"
TOKEN_CACHE_SECONDS = 30.0


class OAuthError(ServiceError):
    """RFC 6749 error: `message` is the error code (invalid_client, invalid_grant, ...)."""

    def __init__(self, code: str, description: str, status: int = 400) -> None:
        super().__init__(code, description)
        self.status = status


class TokenResponse(msgspec.Struct):
    access_token: str
    token_type: str
    scope: str
    created_at: int
    refresh_token: str | None = None
    account_id: int | None = None


class Credentials(msgspec.Struct, frozen=True):
    """Who is calling: the token's account (None for app-only tokens) and its granted scopes."""
    token: Token
    account_id: int | None
    scopes: frozenset[str]


def parse_redirect_uris(raw: list[str]) -> list[str]:
    uris = [u.strip() for item in raw for u in item.split("\n") if u.strip()]
    if not uris:
        raise Unprocessable("Redirect URI can't be blank")
    for uri in uris:
        if uri == OOB:
            continue
        parts = urlsplit(uri)
        if not parts.scheme or parts.fragment or parts.scheme.lower() in ("javascript", "data", "vbscript"):
            raise Unprocessable(f"Redirect URI must be an absolute URI: {uri}")
        if parts.scheme in ("http", "https") and not parts.netloc:
            raise Unprocessable(f"Redirect URI must be an absolute URI: {uri}")
    return uris


async def register_app(state: State, *, name: str, redirect_uris: list[str], scopes: str | None,
                       website: str | None) -> tuple[App, str]:
    if not name.strip():
        raise Unprocessable("Name can't be blank")
    if len(name) > 200:
        raise Unprocessable("Name is too long (maximum is 200 characters)")
    uris = parse_redirect_uris(redirect_uris)
    try:
        scope_list = scope_rules.parse(scopes)
    except ValueError as exc:
        raise Unprocessable(f"Scopes are invalid: {exc}") from None
    secret = new_token()
    async with state.db.transaction() as tx:
        app = await store.insert_app(tx, name=name.strip(), website=website or None, client_id=new_token(),
                                     client_secret_hash=token_hash(secret), redirect_uris="\n".join(uris),
                                     scopes=" ".join(scope_list))
    return app, secret


async def find_app(state: State, client_id: str | None) -> App:
    app = await store.app_by_client_id(state.db, client_id or "")
    if app is None:
        raise OAuthError("invalid_client", "Client authentication failed due to unknown client, no client "
                         "authentication included, or unsupported authentication method.", 401)
    return app


async def authenticate_client(state: State, client_id: str | None, client_secret: str | None) -> App:
    app = await find_app(state, client_id)
    if not client_secret or not same(token_hash(client_secret), app.client_secret_hash):
        raise OAuthError("invalid_client", "Client authentication failed: wrong client secret.", 401)
    return app


def check_authorize_request(app: App, redirect_uri: str | None, scope: str | None) -> tuple[str, list[str]]:
    """Validate an authorisation request; returns the redirect URI and the requested scopes."""
    registered = app.redirect_uris.split("\n")
    uri = redirect_uri or (registered[0] if len(registered) == 1 else "")
    if uri not in registered:
        raise OAuthError("invalid_redirect_uri", "The redirect URI included is not valid.")
    try:
        requested = scope_rules.parse(scope, default=app.scopes)
    except ValueError as exc:
        raise OAuthError("invalid_scope", f"The requested scope is invalid, unknown, or malformed: {exc}") from None
    if not scope_rules.subset(requested, app.scopes.split()):
        raise OAuthError("invalid_scope", "The requested scope exceeds the scopes the app registered.")
    return uri, requested


async def issue_code(state: State, app: App, account: Account, redirect_uri: str, requested: list[str],
                     challenge: str | None, method: str | None) -> str:
    if challenge and (method or "plain") != "S256":
        raise OAuthError("invalid_request", "Only the S256 code challenge method is supported.")
    code = new_token()
    async with state.db.transaction() as tx:
        await store.insert_code(tx, code_hash=token_hash(code), app_id=app.id, account_id=account.id,
                                redirect_uri=redirect_uri, scopes=" ".join(requested), challenge=challenge,
                                method="S256" if challenge else None)
    return code


async def _issue_token(state: State, app: App, account_id: int | None, scopes: list[str] | str,
                       with_refresh: bool = True) -> TokenResponse:
    scope_text = scopes if isinstance(scopes, str) else " ".join(scopes)
    access = new_token()
    refresh = new_token() if with_refresh else None
    async with state.db.transaction() as tx:
        await store.insert_token(tx, token_hash=token_hash(access),
                                         refresh_hash=token_hash(refresh) if refresh else None,
                                         app_id=app.id, account_id=account_id, scopes=scope_text)
    return TokenResponse(access_token=access, token_type="Bearer", scope=scope_text,
                         created_at=int(time.time()), refresh_token=refresh, account_id=account_id)


def _pkce_ok(verifier: str | None, challenge: str) -> bool:
    if not verifier:
        return False
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return same(digest, challenge)


def _requested_scopes(app: App, scope: str | None) -> list[str]:
    try:
        requested = scope_rules.parse(scope, default=app.scopes)
    except ValueError as exc:
        raise OAuthError("invalid_scope", f"The requested scope is invalid, unknown, or malformed: {exc}") from None
    if not scope_rules.subset(requested, app.scopes.split()):
        raise OAuthError("invalid_scope", "The requested scope exceeds the scopes the app registered.")
    return requested


async def token_grant(state: State, *, grant_type: str | None, client_id: str | None, client_secret: str | None,
                      code: str | None = None, redirect_uri: str | None = None, code_verifier: str | None = None,
                      refresh_token: str | None = None, username: str | None = None, password: str | None = None,
                      scope: str | None = None) -> TokenResponse:
    if grant_type not in ("authorization_code", "client_credentials", "refresh_token", "password"):
        raise OAuthError("unsupported_grant_type", "The authorization grant type is not supported by the "
                         "authorization server.")
    if grant_type == "password" and not state.config["password_grant"]:
        raise OAuthError("unsupported_grant_type", "The password grant is disabled on this server.")
    app = await authenticate_client(state, client_id, client_secret)

    if grant_type == "authorization_code":
        if not code:
            raise OAuthError("invalid_request", "The request is missing the code parameter.")
        async with state.db.transaction() as tx:
            row = await store.take_code(tx, token_hash(code))
        if row is None or row["app_id"] != app.id or row["expires_at"] < time.time():
            raise OAuthError("invalid_grant", "The provided authorization grant is invalid, expired, revoked, "
                             "does not match the redirection URI used in the authorization request, or was issued "
                             "to another client.")
        if redirect_uri and redirect_uri != row["redirect_uri"]:
            raise OAuthError("invalid_grant", "The redirect URI does not match the one used to authorize.")
        if row["code_challenge"] and not _pkce_ok(code_verifier, row["code_challenge"]):
            raise OAuthError("invalid_grant", "The PKCE code verifier does not match the code challenge.")
        return await _issue_token(state, app, row["account_id"], row["scopes"])

    if grant_type == "client_credentials":
        return await _issue_token(state, app, None, _requested_scopes(app, scope), with_refresh=False)

    if grant_type == "refresh_token":
        old = await store.token_by_refresh(state.db, token_hash(refresh_token or ""))
        if old is None or old.app_id != app.id:
            raise OAuthError("invalid_grant", "The refresh token is invalid, expired or revoked.")
        async with state.db.transaction() as tx:
            await store.revoke_token(tx, old.id)
        state.token_cache.clear()
        return await _issue_token(state, app, old.account_id, old.scopes)

    found = await account_service.authenticate(state, username or "", password or "")
    if found is None:
        raise OAuthError("invalid_grant", "The user credentials were incorrect.")
    return await _issue_token(state, app, found[1].id, _requested_scopes(app, scope))


async def revoke(state: State, *, client_id: str | None, client_secret: str | None, token: str | None) -> None:
    app = await authenticate_client(state, client_id, client_secret)
    if token:
        async with state.db.transaction() as tx:
            await store.revoke_by_hash(tx, token_hash(token), app.id)
        state.token_cache.clear()


async def credentials_for(state: State, bearer: str) -> Credentials | None:
    """Look a bearer token up (through a short cache: this runs on every API request)."""
    key = token_hash(bearer)
    cached = state.token_cache.get(key)
    now = time.monotonic()
    if cached is not None and cached[1] > now:
        return cached[0]
    token = await store.token_by_hash(state.db, key)
    creds = None
    if token is not None:
        if token.account_id is not None:
            account = await account_store.get(state.db, token.account_id)
            user = await account_store.user(state.db, token.account_id)
            if account is None or account.suspended or user is None or user.disabled:
                token = None
        if token is not None:
            creds = Credentials(token=token, account_id=token.account_id, scopes=frozenset(token.scopes.split()))
    if len(state.token_cache) > 10000:
        state.token_cache.clear()
    state.token_cache[key] = (creds, now + TOKEN_CACHE_SECONDS)
    return creds


async def create_token_for_user(state: State, username: str, scopes: str) -> str:
    """`crosstalk admin create-token`: a token for scripts, owned by a built-in app."""
    account = await account_store.by_username(state.db, username)
    if account is None or not account.local:
        raise Unprocessable(f"no local user {username}")
    try:
        scope_list = scope_rules.parse(scopes)
    except ValueError as exc:
        raise Unprocessable(f"unknown scope {exc}") from None
    async with state.db.transaction() as tx:  # several CLI processes may race to create the app
        app = await store.app_by_client_id(tx, "crosstalk-admin-cli")
        if app is None:
            app = await store.insert_app(tx, name="crosstalk admin", website=None, client_id="crosstalk-admin-cli",
                                         client_secret_hash=token_hash(new_token()), redirect_uris=OOB,
                                         scopes="read write follow push admin:read admin:write")
    response = await _issue_token(state, app, account.id, scope_list, with_refresh=False)
    return response.access_token

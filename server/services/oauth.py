"""OAuth 2 as Mastodon does it: apps, authorisation codes (with optional PKCE), tokens, revocation."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from urllib.parse import urlsplit

import msgspec

from server.caches import TOKENS
from server.domain.records import Account, App, Token
from server.ids import now_iso
from server.services import accounts as account_service
from server.services import audit, loaders, oidc
from server.services import scopes as scope_rules
from server.services.errors import ServiceError, Unprocessable
from server.services.secrets import new_token, same, token_hash
from server.state import Invalidation, State
from server.storage import accounts as account_store
from server.storage import oauth as store

OOB = "urn:ietf:wg:oauth:2.0:oob"


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
                      scope: str | None = None, address: str | None = None) -> TokenResponse:
    """The token endpoint. `address` is the client's (for the sign-in limits of the password grant)."""
    response = await _grant(state, grant_type=grant_type, client_id=client_id, client_secret=client_secret, code=code,
                            redirect_uri=redirect_uri, code_verifier=code_verifier, refresh_token=refresh_token,
                            username=username, password=password, scope=scope, address=address)
    await _audit_grant(state, grant_type or "", client_id, response, address)
    return response


async def _audit_grant(state: State, grant_type: str, client_id: str | None, response: TokenResponse,
                       address: str | None) -> None:
    account = await account_store.get(state.db, response.account_id) if response.account_id is not None else None
    actor = (audit.person(account.username, account.id, address) if account is not None
             else audit.Actor(name=f"app:{client_id or ''}"[:120], address=address))
    await audit.record_now(state, actor, "token.grant", target_type="account" if account else "app",
                           target_id=account.id if account else None, target=account.acct if account else None,
                           detail={"grant_type": grant_type, "scope": response.scope})


async def _grant(state: State, *, grant_type: str | None, client_id: str | None, client_secret: str | None,
                 code: str | None, redirect_uri: str | None, code_verifier: str | None,
                 refresh_token: str | None, username: str | None, password: str | None,
                 scope: str | None, address: str | None) -> TokenResponse:
    if grant_type not in ("authorization_code", "client_credentials", "refresh_token", "password"):
        raise OAuthError("unsupported_grant_type", "The authorization grant type is not supported by the "
                         "authorization server.")
    if grant_type == "password" and not (state.settings.password_grant and state.settings.auth.local_passwords):
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
        try:
            await oidc.recheck_on_refresh(state, old.account_id, address)
        except oidc.ProviderUnavailable:
            raise OAuthError("temporarily_unavailable", "The identity provider cannot be reached; try again "
                             "later.", status=503) from None
        except oidc.LoginRefused:
            async with state.db.transaction() as tx:  # the provider said no: this grant ends here
                await store.revoke_token(tx, old.id)
                await state.invalidations.announce(tx, Invalidation.ACCESS, str(old.account_id or ""))
            raise OAuthError("invalid_grant", "The identity provider no longer signs this person in.") from None
        async with state.db.transaction() as tx:
            await store.revoke_token(tx, old.id)
            await state.invalidations.announce(tx, Invalidation.ACCESS, str(old.account_id or ""))
        return await _issue_token(state, app, old.account_id, old.scopes)

    found = await account_service.sign_in(state, username or "", password or "", address)
    if found is None:
        raise OAuthError("invalid_grant", "The user credentials were incorrect.")
    return await _issue_token(state, app, found[1].id, _requested_scopes(app, scope))


async def revoke(state: State, *, client_id: str | None, client_secret: str | None, token: str | None,
                 address: str | None = None) -> None:
    app = await authenticate_client(state, client_id, client_secret)
    if token:
        async with state.db.transaction() as tx:
            owner = await store.account_of_token(tx, token_hash(token), app.id)
            if await store.revoke_by_hash(tx, token_hash(token), app.id):
                await state.invalidations.announce(tx, Invalidation.ACCESS, str(owner or ""))
                await audit.record(tx, audit.Actor(name=f"app:{app.name}"[:120], address=address), "token.revoke",
                                   target_type="account" if owner else "app", target_id=owner or app.id,
                                   detail={"app": app.name})


async def credentials_for(state: State, bearer: str) -> Credentials | None:
    """Look a bearer token up (through a short cache: this runs on every API request)."""
    key = token_hash(bearer)
    cache = state.caches.get(TOKENS)
    cached = cache.get(key)
    if cached is not None:
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
    cache.put(key, (creds,))
    return creds


async def account_of(state: State, creds: Credentials) -> Account | None:
    """The account a user token acts for (None for an app-only token or an account gone since)."""
    return await loaders.account(state, creds.account_id) if creds.account_id is not None else None


async def app_of(state: State, creds: Credentials) -> App | None:
    """The application a token was issued to."""
    return await store.app_by_id(state.db, creds.token.app_id) if creds.token.app_id is not None else None


async def session_account(state: State, session_id: str) -> int | None:
    """The account signed in with this browser session (the authorize page's cookie)."""
    return await store.session_account(state.db, token_hash(session_id))


async def start_session(state: State, account_id: int, seconds: int) -> str:
    """A new browser session for the account after a password sign-in; its id (the cookie value)."""
    new_session = secrets.token_urlsafe(32)
    async with state.db.transaction() as tx:
        await store.insert_session(tx, token_hash(new_session), account_id, seconds)
        await account_store.update_user_prefs(tx, account_id, {"last_sign_in_at": now_iso()})
    return new_session


async def signed_in(state: State, account_id: int) -> None:
    """Note when the account last signed in (a token was granted to it)."""
    async with state.db.transaction() as tx:
        await account_store.update_user_prefs(tx, account_id, {"last_sign_in_at": now_iso()})


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
        app = await store.ensure_app(tx, name="crosstalk admin", website=None, client_id="crosstalk-admin-cli",
                                     client_secret_hash=token_hash(new_token()), redirect_uris=OOB,
                                     scopes="read write follow push admin:read admin:write")
    response = await _issue_token(state, app, account.id, scope_list, with_refresh=False)
    await audit.record_now(state, audit.CLI, "token.grant", target_type="account", target_id=account.id,
                           target=account.acct, detail={"grant_type": "admin-cli", "scope": response.scope})
    return response.access_token

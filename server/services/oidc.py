"""Single sign-on through an OpenID Connect provider (authorization code flow with PKCE, `state` and
`nonce`).

The ID token is checked with joserfc (signature against the provider's JWKS, refetched once when a
token names a key we do not know yet, so key rotation needs nothing from the admin; issuer, audience,
expiry, nonce). The person is found by (issuer, subject), where the subject comes from the claim the
admin names as stable (Entra ID's `oid`). A first sign-in links a pre-provisioned (SCIM) account,
an existing one by verified e-mail if allowed, or creates one; profile fields and the role are
refreshed from the claims at every sign-in, demotion included.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import secrets
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus, urlencode

import aiohttp
import msgspec

from server.caches import BoundedCache
from server.domain.identity import Identity, Role
from server.domain.records import Account
from server.services import accounts as account_service
from server.services import audit, lifecycle
from server.services.errors import ServiceError, Unprocessable
from server.services.secrets import token_hash
from server.settings import AccountCreation, OidcSettings, UsernameMode
from server.state import State
from server.storage import accounts as account_store
from server.storage import identity as store
from server.storage import scim as scim_store

if TYPE_CHECKING:  # joserfc (and the cryptography package under it) is imported at the first sign-in
    from joserfc import jwk

log = logging.getLogger("crosstalk.oidc")
CACHE = "oidc"  # discovery document and JWKS; owner: this module
LOGIN_SECONDS = 600  # a sign-in must come back from the provider within this time
SIGNUP_SECONDS = 1800
CLOCK_SKEW = 120
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
CALLBACK_PATH = "/auth/oidc/callback"
_INVALID_USERNAME_CHARS = re.compile(r"[^A-Za-z0-9_]+")


class ProviderUnavailable(ServiceError):
    """The provider did not answer, or answered nonsense: the person sees a clear page, not a 500."""

    status = 502


class LoginRefused(ServiceError):
    """The sign-in is not accepted (forged or replayed, wrong audience, not in the allowed groups…)."""

    status = 403


class Outcome(msgspec.Struct, kw_only=True):
    """Where a finished sign-in leads: a session for the account, or the username choice first."""

    return_to: str
    account_id: int | None = None
    identity_id: int | None = None
    signup: str | None = None  # the secret that names a pending first sign-in


# -- the provider's documents ----------------------------------------------------------------------

def _cache(state: State) -> BoundedCache:
    try:
        return state.caches.get(CACHE)
    except KeyError:
        return state.caches.add(BoundedCache(CACHE, maxsize=8, ttl=3600.0))


async def _get_json(state: State, url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    timeout = aiohttp.ClientTimeout(total=state.settings.oidc.timeout_seconds)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url, headers=headers) as answer:
            if answer.status != 200:
                raise ProviderUnavailable(f"the identity provider answered {answer.status} for {url}")
            doc = msgspec.json.decode(await answer.read())
    except (aiohttp.ClientError, TimeoutError, msgspec.DecodeError) as exc:
        raise ProviderUnavailable(f"the identity provider could not be reached ({type(exc).__name__})") from None
    if not isinstance(doc, dict):
        raise ProviderUnavailable("the identity provider answered something other than a JSON object")
    return doc


async def discovery(state: State) -> dict[str, Any]:
    cfg = state.settings.oidc
    cache = _cache(state)
    doc = cache.get("discovery")
    if doc is None:
        doc = await _get_json(state, cfg.issuer.rstrip("/") + "/.well-known/openid-configuration")
        for key in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(doc.get(key), str):
                raise ProviderUnavailable(f"the provider's discovery document has no {key}")
        if doc["issuer"].rstrip("/") != cfg.issuer.rstrip("/"):
            raise ProviderUnavailable("the provider's discovery document names another issuer")
        cache.put("discovery", doc)
    return doc


async def _keys(state: State, jwks_uri: str, refresh: bool = False) -> jwk.KeySet:
    from joserfc import errors as jose_errors
    from joserfc import jwk
    cache = _cache(state)
    keys = None if refresh else cache.get("jwks")
    if keys is None:
        if refresh and time.monotonic() - (cache.get("jwks_refreshed_at") or -60.0) < 10:
            cached: jwk.KeySet | None = cache.get("jwks")
            if cached is not None:
                return cached  # refetched moments ago: tokens with unknown keys cannot make us fetch in a loop
        try:
            keys = jwk.KeySet.import_key_set(await _get_json(state, jwks_uri))  # type: ignore[arg-type]
        except (jose_errors.JoseError, ValueError, KeyError, TypeError):
            raise ProviderUnavailable("the provider's key set (JWKS) could not be read") from None
        cache.put("jwks", keys)
        if refresh:
            cache.put("jwks_refreshed_at", time.monotonic())
    return keys


# -- starting a sign-in -------------------------------------------------------------------------------

def redirect_uri(state: State) -> str:
    return state.base_url + CALLBACK_PATH


def safe_return_path(value: str | None) -> str:
    """Only paths on this server: an open redirect would hand codes to strangers."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/oauth/authorize"
    return value


async def begin(state: State, return_to: str | None) -> str:
    """The provider's authorization URL for a new sign-in (its state, nonce and PKCE verifier kept)."""
    doc = await discovery(state)
    cfg = state.settings.oidc
    login_state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    async with state.db.transaction() as tx:
        await store.insert_login(tx, token_hash(login_state), nonce, verifier, safe_return_path(return_to),
                                 LOGIN_SECONDS)
    query = urlencode({"response_type": "code", "client_id": cfg.client_id, "redirect_uri": redirect_uri(state),
                       "scope": " ".join(cfg.scopes), "state": login_state, "nonce": nonce,
                       "code_challenge": challenge, "code_challenge_method": "S256"})
    endpoint = doc["authorization_endpoint"]
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


# -- finishing it -----------------------------------------------------------------------------------------

async def _token_request(state: State, doc: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
    """A call to the provider's token endpoint (the code exchange, or a refresh)."""
    cfg = state.settings.oidc
    headers = {"Accept": "application/json"}
    methods = doc.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]  # OIDC's default
    if "client_secret_basic" in methods:  # RFC 6749 2.3.1: each part form-encoded, then Basic
        pair = f"{quote_plus(cfg.client_id)}:{quote_plus(cfg.client_secret)}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    else:
        form = {**form, "client_id": cfg.client_id, "client_secret": cfg.client_secret}
    timeout = aiohttp.ClientTimeout(total=cfg.timeout_seconds)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session, \
                session.post(doc["token_endpoint"], data=form, headers=headers) as answer:
            body = await answer.read()
            status = answer.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ProviderUnavailable(f"the identity provider could not be reached ({type(exc).__name__})") from None
    try:
        tokens = msgspec.json.decode(body)
    except msgspec.DecodeError:
        tokens = None
    if status >= 500 or not isinstance(tokens, dict):
        raise ProviderUnavailable(f"the identity provider's token endpoint answered {status}")
    if status != 200:
        raise LoginRefused(f"the identity provider refused the {form['grant_type']} grant: {tokens.get('error', status)}")
    return tokens


async def _exchange(state: State, doc: dict[str, Any], code: str, verifier: str) -> dict[str, Any]:
    tokens = await _token_request(state, doc, {"grant_type": "authorization_code", "code": code,
                                               "redirect_uri": redirect_uri(state), "code_verifier": verifier})
    if not isinstance(tokens.get("id_token"), str):
        raise LoginRefused("the identity provider sent no ID token")
    return tokens


async def verify_id_token(state: State, id_token: str, nonce: str | None) -> dict[str, Any]:
    """The ID token's claims, if its signature, issuer, audience, times and nonce are right (an ID
    token from a refresh carries no nonce: `nonce=None`)."""
    from joserfc import errors as jose_errors
    from joserfc import jwt
    doc = await discovery(state)
    cfg = state.settings.oidc
    try:
        try:
            token = jwt.decode(id_token, await _keys(state, doc["jwks_uri"]), algorithms=ALGORITHMS)
        except (jose_errors.InvalidKeyIdError, jose_errors.BadSignatureError):
            # A key we have not seen (named by kid, or unnamed and not verifying): the provider may have
            # rotated its keys, so fetch them again, once; a forged token fails again after that.
            token = jwt.decode(id_token, await _keys(state, doc["jwks_uri"], refresh=True), algorithms=ALGORITHMS)
        claims: dict[str, Any] = dict(token.claims)
        registry = jwt.JWTClaimsRegistry(
            leeway=CLOCK_SKEW, iss={"essential": True, "value": doc["issuer"]},
            aud={"essential": True, "value": cfg.client_id}, exp={"essential": True}, iat={"essential": True},
            sub={"essential": True})
        if nonce is not None:
            registry.options["nonce"] = {"essential": True, "value": nonce}
        registry.validate(claims)
    except jose_errors.JoseError as exc:
        raise LoginRefused(f"the ID token was refused ({exc.error})") from None
    except (ValueError, TypeError):
        raise LoginRefused("the ID token is malformed") from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != cfg.client_id:
        raise LoginRefused("the ID token was issued to another client (azp)")
    return claims


async def _userinfo_unchecked(state: State, doc: dict[str, Any], access_token: Any) -> dict[str, Any]:
    endpoint = doc.get("userinfo_endpoint")
    if not isinstance(endpoint, str) or not isinstance(access_token, str) or not access_token:
        return {}
    return await _get_json(state, endpoint, headers={"Authorization": f"Bearer {access_token}"})


async def _userinfo(state: State, doc: dict[str, Any], access_token: Any, sub: str) -> dict[str, Any]:
    info = await _userinfo_unchecked(state, doc, access_token)
    if not sub or info.get("sub") != sub:
        return {}  # OpenID Connect Core 5.3.2: a userinfo answer about someone else is not used
    return info


async def finish(state: State, *, login_state: str | None, code: str | None, error: str | None,
                 error_description: str | None, address: str | None) -> Outcome:
    """Check the provider's answer and sign the person in (or refuse, with a reason)."""
    async with state.db.transaction() as tx:
        pending = await store.take_login(tx, token_hash(login_state or ""))
    if pending is None:
        await _refused(state, address, "unknown, expired or reused state")
        raise LoginRefused("This sign-in has expired or was already used. Please start again.")
    nonce, verifier, return_to = pending
    if error:
        await _refused(state, address, f"provider error {error}")
        raise LoginRefused(f"The identity provider did not sign you in: {error_description or error}")
    if not code:
        raise LoginRefused("The identity provider sent no authorization code.")
    doc = await discovery(state)
    tokens = await _exchange(state, doc, code, verifier)
    try:
        id_claims = await verify_id_token(state, tokens["id_token"], nonce)
    except LoginRefused as exc:
        await _refused(state, address, exc.message)
        raise
    claims = {**await _userinfo(state, doc, tokens.get("access_token"), id_claims["sub"]), **id_claims}
    refresh = tokens.get("refresh_token")
    return await sign_in(state, doc["issuer"], claims, return_to, address,
                         provider_refresh=refresh if isinstance(refresh, str) and refresh else None)


async def _refused(state: State, address: str | None, reason: str, account: Account | None = None) -> None:
    await audit.record_now(state, audit.Actor(name=account.username if account else "anonymous",
                                              account_id=account.id if account else None, address=address),
                           "login.failure", outcome="refused", target_type="account" if account else None,
                           target_id=account.id if account else None, detail={"method": "oidc", "reason": reason})


# -- claims → account ---------------------------------------------------------------------------------

def _claim_text(claims: dict[str, Any], name: str) -> str:
    value = claims.get(name)
    return value.strip() if isinstance(value, str) else ""


def groups_of(claims: dict[str, Any], cfg: OidcSettings) -> set[str]:
    value = claims.get(cfg.groups_claim)
    if isinstance(value, str):
        value = [value]
    return {str(v) for v in value} if isinstance(value, list) else set()


def role_from_groups(groups: set[str], admin_groups: list[str], moderator_groups: list[str]) -> Role:
    if groups & set(admin_groups):
        return Role.ADMIN
    if groups & set(moderator_groups):
        return Role.MODERATOR
    return Role.USER


def subject_of(claims: dict[str, Any], cfg: OidcSettings) -> str:
    value = claims.get(cfg.subject_claim)
    if isinstance(value, int | str) and not isinstance(value, bool) and str(value).strip():
        return str(value).strip()
    raise LoginRefused(f"The identity provider sent no {cfg.subject_claim} claim to identify you.")


def username_candidate(raw: str) -> str:
    """A claim value as a username: the part before any @, other characters as underscores."""
    base = _INVALID_USERNAME_CHARS.sub("_", raw.split("@", 1)[0]).strip("_")[:30]
    return base or "user"


async def free_username(state: State, raw: str) -> str:
    """The candidate itself if free, else the candidate with 2, 3, … appended (cut to fit 30)."""
    base = username_candidate(raw)
    for n in range(1, 10000):
        suffix = "" if n == 1 else str(n)
        name = base[:30 - len(suffix)] + suffix
        if name.lower() not in account_service.RESERVED and await account_store.by_username(state.db, name) is None:
            return name
    raise LoginRefused("No free username could be found; ask an admin.")


async def sign_in(state: State, issuer: str, claims: dict[str, Any], return_to: str, address: str | None, *,
                  provider_refresh: str | None = None) -> Outcome:
    cfg = state.settings.oidc
    subject = subject_of(claims, cfg)
    groups = groups_of(claims, cfg)
    identity = await store.identity_by_subject(state.db, issuer, subject)
    account = await account_store.get(state.db, identity.account_id) if identity else None
    if cfg.allowed_groups and not groups & set(cfg.allowed_groups):
        if account is not None:  # left the allowed groups: the account is shut off
            await lifecycle.suspend(state, account, audit.SYSTEM.at(address), origin="sso",
                                    reason="not in the allowed groups")
        await _refused(state, address, "not in the allowed groups", account)
        raise LoginRefused("Your organisation has not given you access to this server.")
    if identity is None or account is None:
        found = await _link_target(state, claims, subject)
        if found is None:
            if cfg.account_creation is AccountCreation.PROVISIONED:
                await _refused(state, address, "no provisioned account")
                raise LoginRefused("There is no account for you here yet; ask your administrator.")
            if cfg.username_mode is UsernameMode.ASK:
                secret = secrets.token_urlsafe(32)
                async with state.db.transaction() as tx:
                    await store.insert_signup(tx, token_hash(secret), issuer, subject,
                                              msgspec.json.encode(claims).decode(), return_to, SIGNUP_SECONDS)
                return Outcome(return_to=return_to, signup=secret)
            account = await create_account(state, claims, await free_username(state, _claim_text(claims, cfg.username_claim) or subject))
        else:
            account = found
        identity = await _link(state, account, issuer, subject, claims, address)
    return await _complete(state, account, identity, claims, groups, return_to, address,
                           provider_refresh=provider_refresh)


async def _link_target(state: State, claims: dict[str, Any], subject: str) -> Account | None:
    """An existing account a first sign-in belongs to: provisioned by SCIM for this person, or (if the
    admin allows it) a local account with the same verified e-mail address."""
    cfg = state.settings.oidc
    login_name = _claim_text(claims, cfg.username_claim)
    account_id = await scim_store.account_for_login(state.db, subject, login_name, _claim_text(claims, cfg.email_claim))
    if account_id is None and cfg.link_existing_by_email and claims.get("email_verified") is True:
        email = _claim_text(claims, cfg.email_claim)
        found = await account_store.user_by_login(state.db, email) if "@" in email else None
        if found is not None and found[0].email.lower() == email.lower():
            account_id = found[1].id
    if account_id is None:
        return None
    linked = await store.identities_of(state.db, [account_id])
    if linked.get(account_id):
        return None  # already linked to someone else at the provider: never take it over
    return await account_store.get(state.db, account_id)


async def create_account(state: State, claims: dict[str, Any], username: str) -> Account:
    cfg = state.settings.oidc
    email = _claim_text(claims, cfg.email_claim).lower()
    if not account_service.EMAIL.match(email):
        email = f"{username.lower()}@users.{state.domain.split(':')[0]}.invalid"
    if await account_store.email_taken(state.db, email):
        raise LoginRefused("An account with your e-mail address exists already; ask an admin to link it.")
    async with state.db.transaction() as tx:
        account_id = await account_store.insert_local(tx, username=username, email=email, password_hash="",
                                                      admin=False, approved=True, base_url=state.base_url)
        await audit.record(tx, audit.SYSTEM, "account.create", target_type="account", target_id=account_id,
                           target=username, detail={"source": "oidc"})
    account = await account_store.get(state.db, account_id)
    assert account is not None
    return account


async def _link(state: State, account: Account, issuer: str, subject: str, claims: dict[str, Any],
                address: str | None) -> Identity:
    async with state.db.transaction() as tx:
        identity = await store.insert_identity(tx, account.id, issuer, subject,
                                               _claim_text(claims, state.settings.oidc.email_claim) or None)
        await audit.record(tx, audit.SYSTEM.at(address), "sso.link", target_type="account", target_id=account.id,
                           target=account.acct, detail={"issuer": issuer, "subject": subject})
    return identity


async def _complete(state: State, account: Account, identity: Identity, claims: dict[str, Any], groups: set[str],
                    return_to: str, address: str | None, *, provider_refresh: str | None = None) -> Outcome:
    cfg = state.settings.oidc
    await _check_access(state, account, address)
    await _apply_claims(state, account, claims, groups, address)
    async with state.db.transaction() as tx:
        await store.touch_identity(tx, identity.id, _claim_text(claims, cfg.email_claim) or None)
        if provider_refresh is not None:
            await store.set_provider_refresh(tx, identity.id, seal_refresh(cfg, identity.id, provider_refresh))
        await audit.record(tx, audit.person(account.username, account.id, address), "login.success",
                           target_type="account", target_id=account.id, target=account.acct,
                           detail={"method": "oidc", "issuer": identity.issuer})
    return Outcome(return_to=return_to, account_id=account.id, identity_id=identity.id)


async def _check_access(state: State, account: Account, address: str | None) -> None:
    """An SSO-suspended account comes back with a sign-in; other suspensions and disabled users stay out."""
    if account.suspended:
        moderation = (await store.moderation_of(state.db, [account.id]))[account.id]
        if moderation.suspension_origin != "sso" or account.deleted_at is not None:
            await _refused(state, address, "account suspended", account)
            raise LoginRefused("This account is suspended.")
        await lifecycle.unsuspend(state, account, audit.SYSTEM.at(address), origin="sso")
    user = await account_store.user(state.db, account.id)
    if user is None or user.disabled:
        await _refused(state, address, "account disabled", account)
        raise LoginRefused("This account is disabled.")


async def _apply_claims(state: State, account: Account, claims: dict[str, Any], groups: set[str],
                        address: str | None) -> None:
    cfg = state.settings.oidc
    if cfg.admin_groups or cfg.moderator_groups:  # the provider decides roles: promotion and demotion
        role = role_from_groups(groups, cfg.admin_groups, cfg.moderator_groups)
        await lifecycle.set_role(state, account, role, audit.SYSTEM.at(address), source="oidc")
    await refresh_profile(state, account, claims)


# -- token refresh ----------------------------------------------------------------------------------------
# A Crosstalk refresh token outlives the sign-in that issued it, so a refresh asks the provider again
# (with the provider's own refresh token, kept sealed from the last sign-in) for the person's groups.

def _sealing_key(cfg: OidcSettings) -> bytes:
    return hashlib.sha256(b"crosstalk oidc refresh token\0" + cfg.client_secret.encode()).digest()


def seal_refresh(cfg: OidcSettings, identity_id: int, token: str) -> str:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(_sealing_key(cfg)).encrypt(nonce, token.encode(), str(identity_id).encode())
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def open_refresh(cfg: OidcSettings, identity_id: int, sealed: str) -> str | None:
    """None if it does not open (the client secret changed since): the next sign-in stores a new one."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    try:
        raw = base64.urlsafe_b64decode(sealed)
        return AESGCM(_sealing_key(cfg)).decrypt(raw[:12], raw[12:], str(identity_id).encode()).decode()
    except (InvalidTag, ValueError):
        return None


async def recheck_on_refresh(state: State, account_id: int | None, address: str | None) -> None:
    """Before a Crosstalk token is refreshed: when the provider decides roles or access, ask it again.
    Raises LoginRefused when the provider no longer signs the person in or they left the allowed
    groups (the account is then suspended, as at sign-in), ProviderUnavailable when it cannot be asked."""
    cfg = state.settings.oidc
    if not cfg.enabled or account_id is None or not (cfg.allowed_groups or cfg.admin_groups or cfg.moderator_groups):
        return
    account = await account_store.get(state.db, account_id)
    links = (await store.identities_of(state.db, [account_id])).get(account_id, [])
    doc = await discovery(state)
    identity = next((i for i in links if i.issuer == doc["issuer"]), None)
    if account is None or identity is None:
        return  # a local account: nothing to ask the provider
    sealed = await store.provider_refresh(state.db, identity.id)
    token = open_refresh(cfg, identity.id, sealed) if sealed else None
    if token is None:
        return  # the provider gave no refresh token (scope offline_access): the next sign-in checks
    try:
        tokens = await _token_request(state, doc, {"grant_type": "refresh_token", "refresh_token": token})
    except LoginRefused as exc:
        await _refused(state, address, exc.message, account)
        raise
    id_token = tokens.get("id_token")
    id_claims = await verify_id_token(state, id_token, None) if isinstance(id_token, str) else {}
    info = await _userinfo(state, doc, tokens.get("access_token"), id_claims.get("sub", ""))
    if not id_claims and not info:
        # No ID token: the userinfo answer counts only if it is about the linked person.
        candidate = await _userinfo_unchecked(state, doc, tokens.get("access_token"))
        info = candidate if subject_of(candidate, cfg) == identity.subject else {}
    claims = {**info, **id_claims}
    if not claims or subject_of(claims, cfg) != identity.subject:
        await _refused(state, address, "the provider answered the refresh about someone else", account)
        raise LoginRefused("the identity provider did not confirm this person")
    groups = groups_of(claims, cfg)
    if cfg.allowed_groups and not groups & set(cfg.allowed_groups):
        await lifecycle.suspend(state, account, audit.SYSTEM.at(address), origin="sso",
                                reason="not in the allowed groups")
        await _refused(state, address, "not in the allowed groups", account)
        raise LoginRefused("Your organisation has not given you access to this server.")
    await _check_access(state, account, address)
    await _apply_claims(state, account, claims, groups, address)
    rotated = tokens.get("refresh_token")
    if isinstance(rotated, str) and rotated and rotated != token:
        async with state.db.transaction() as tx:
            await store.set_provider_refresh(tx, identity.id, seal_refresh(cfg, identity.id, rotated))


async def refresh_profile(state: State, account: Account, claims: dict[str, Any]) -> None:
    """Display name and the mapped profile fields from the claims."""
    cfg = state.settings.oidc
    values = {}
    for pair in cfg.field_claims:
        label, _, claim = (part.strip() for part in pair.partition("="))
        values[label] = _claim_text(claims, claim) or None
    await set_profile(state, account, _claim_text(claims, cfg.display_name_claim) or None, values)


async def set_profile(state: State, account: Account, display_name: str | None, values: dict[str, str | None]) -> None:
    """Set the display name and the named profile fields (None removes a field); the person's other
    fields stay. Nothing is written (or federated) when nothing changed."""
    changes = account_service.ProfileChanges()
    if display_name and display_name[:30] != account.display_name:
        changes.display_name = display_name[:30]
    current = [(f[0], f[2] if len(f) > 2 else f[1]) for f in msgspec.json.decode(account.fields or "[]")]
    fields = [(n, v) for n, v in current if n not in values]
    fields += [(label, value[:255]) for label, value in values.items() if value]
    if sorted(fields) != sorted(current):
        changes.fields = fields[:account_service.MAX_FIELDS]
    if changes.display_name is not None or changes.fields is not None:
        await account_service.update_profile(state, account, changes)


# -- choosing a username at the first sign-in ------------------------------------------------------------

async def pending_signup(state: State, secret: str) -> tuple[str, str]:
    """(suggested username, return path) of a first sign-in waiting for its username."""
    found = await store.signup(state.db, token_hash(secret))
    if found is None:
        raise LoginRefused("This sign-in has expired. Please start again.")
    claims = msgspec.json.decode(found[2])
    suggestion = username_candidate(_claim_text(claims, state.settings.oidc.username_claim) or "")
    return suggestion, found[3]


async def complete_signup(state: State, secret: str, username: str, address: str | None) -> Outcome:
    found = await store.signup(state.db, token_hash(secret))
    if found is None:
        raise LoginRefused("This sign-in has expired. Please start again.")
    issuer, subject, claims_json, return_to = found
    username = username.strip()
    if not account_service.USERNAME.match(username):
        raise Unprocessable("Username must be 1-30 letters, digits or underscores")
    if username.lower() in account_service.RESERVED or await account_store.by_username(state.db, username):
        raise Unprocessable("Username has already been taken")
    if await store.identity_by_subject(state.db, issuer, subject) is not None:
        raise LoginRefused("This sign-in was completed already.")
    claims = msgspec.json.decode(claims_json)
    account = await create_account(state, claims, username)
    async with state.db.transaction() as tx:
        await store.delete_signup(tx, token_hash(secret))
    identity = await _link(state, account, issuer, subject, claims, address)
    return await _complete(state, account, identity, claims, groups_of(claims, state.settings.oidc), return_to,
                           address)


# -- logout -------------------------------------------------------------------------------------------------

async def end_session_url(state: State, post_logout_redirect: str) -> str | None:
    """The provider's end-session address (RP-initiated logout), if it has one and we use it."""
    if not state.settings.oidc.enabled or not state.settings.oidc.end_session:
        return None
    try:
        doc = await discovery(state)
    except ProviderUnavailable:
        return None
    endpoint = doc.get("end_session_endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        return None
    query = urlencode({"client_id": state.settings.oidc.client_id, "post_logout_redirect_uri": post_logout_redirect})
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


# -- web sessions ---------------------------------------------------------------------------------------------

SESSION_SECONDS = 14 * 24 * 3600


async def start_session(state: State, outcome: Outcome) -> str:
    """A web session for a signed-in person; returns the cookie value (only its hash is stored)."""
    assert outcome.account_id is not None
    secret = secrets.token_urlsafe(32)
    async with state.db.transaction() as tx:
        await store.insert_session(tx, token_hash(secret), outcome.account_id, outcome.identity_id, SESSION_SECONDS)
    return secret


async def end_session(state: State, secret: str | None, address: str | None) -> bool:
    """End a web session; True if it was started through the provider (so the provider's session
    should end too)."""
    if not secret:
        return False
    found = await store.session(state.db, token_hash(secret))
    async with state.db.transaction() as tx:
        await store.delete_session(tx, token_hash(secret))
        if found is not None:
            account = await account_store.get(tx, found[0])
            name = account.username if account else "unknown"
            await audit.record(tx, audit.person(name, found[0], address), "logout", target_type="account",
                               target_id=found[0], detail={"method": "oidc" if found[1] else "password"})
    return found is not None and found[1] is not None

"""Local users: creation, sign-in, profile changes."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import msgspec

from server.domain import text
from server.domain.events import ProfileUpdated
from server.domain.records import Account, User
from server.ratelimit import address_subject
from server.services import loaders, secrets
from server.services.errors import NotFound, TooMany, Unprocessable
from server.state import Invalidation, State
from server.storage import accounts as store

USERNAME = re.compile(r"^[A-Za-z0-9_]{1,30}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
MAX_FIELDS = 6
MAX_MENTION_LOOKUPS = 10  # unknown remote accounts looked up for one post
MENTION_LOOKUP_SECONDS = 10.0
RESERVED = {"admin", "root", "actor", "inbox", "api", "oauth", "users", "well-known", "nodeinfo", "instance",
            "system", "support", "postmaster", "webmaster", "hostmaster"}


async def create_user(state: State, username: str, email: str, password: str, *, admin: bool = False,
                      approved: bool = True, allow_reserved: bool = False) -> Account:
    if not USERNAME.match(username):
        raise Unprocessable("Username must be 1-30 letters, digits or underscores")
    if username.lower() in RESERVED and not allow_reserved:
        raise Unprocessable(f"Username {username} is reserved")
    if not EMAIL.match(email):
        raise Unprocessable("E-mail address is not valid")
    if len(password) < 8:
        raise Unprocessable("Password is too short (minimum is 8 characters)")
    if await store.by_username(state.db, username):
        raise Unprocessable("Username has already been taken")
    if await store.email_taken(state.db, email):
        raise Unprocessable("E-mail has already been taken")
    password_hash = await secrets.hash_password(password)
    async with state.db.transaction() as tx:
        account_id = await store.insert_local(tx, username=username, email=email, password_hash=password_hash,
                                              admin=admin, approved=approved, base_url=state.base_url)
    account = await store.get(state.db, account_id)
    assert account is not None
    return account


async def sign_in(state: State, login: str, password: str, address: str | None) -> tuple[User, Account] | None:
    """A user by e-mail or username and password, or None. Disabled or unapproved users never sign in.

    Failed attempts are limited per client address and per account (an unknown login name counts as
    one); past a limit the attempt is refused with TooMany before the password is looked at. An
    attempt is counted before the check, so concurrent guesses cannot slip past the limit, and taken
    back if it succeeds. Known and unknown users cost one scrypt run each, so timing tells nothing.
    """
    if not state.settings.auth.local_passwords:
        return None  # auth.local_passwords = false: only the identity provider signs people in
    login = login.strip()
    found = await store.user_by_login(state.db, login)
    limits = state.rate_limits
    counted = []
    if limits.enabled:
        who = f"account:{found[1].id}" if found else f"login:{login.casefold()}"
        for limit, subject in ((limits.sign_in_address, address_subject(address)), (limits.sign_in_account, who)):
            usage = await limits.hit(limit, subject)
            counted.append((usage, subject))
            if usage.exceeded:
                raise TooMany("Too many failed sign-in attempts; try again later", limit=limit.limit,
                              reset_at=usage.reset_at)
    matches = await secrets.check_password(password, found[0].password_hash if found else None)
    if found is None or not matches:
        return None
    for usage, subject in counted:
        await limits.undo(usage, subject)
    user, account = found
    if user.disabled or not user.approved or account.suspended:
        return None
    return found


async def reset_password(state: State, username: str, password: str) -> None:
    account = await store.by_username(state.db, username)
    if account is None or not account.local:
        raise NotFound(f"no local user {username}")
    if len(password) < 8:
        raise Unprocessable("Password is too short (minimum is 8 characters)")
    password_hash = await secrets.hash_password(password)
    from server.storage import oauth as oauth_store
    async with state.db.transaction() as tx:
        await store.set_password(tx, account.id, password_hash)
        await oauth_store.revoke_all_for_account(tx, account.id)
        await state.invalidations.announce(tx, Invalidation.ACCESS, str(account.id))


async def render_note(state: State, source: str) -> str:
    mentions = text.extract_mentions(source, state.domain)
    resolved = await resolve_mentions(state, mentions)
    return text.render(source, state.base_url, state.domain, resolved).html


async def resolve_mentions(state: State, handles: list[tuple[str, str | None]], *,
                           look_up_unknown: bool = False) -> dict[tuple[str, str | None], text.MentionTarget]:
    """Accounts for mentioned handles. With `look_up_unknown` (a post), remote accounts the instance
    has never seen are looked up through WebFinger, as Mastodon and GoToSocial do, so that the post
    reaches them: a few at once and within a time limit; those not found stay unlinked."""
    resolved = {}
    unknown: list[tuple[str, str]] = []
    for username, domain in handles:
        account = await store.by_username(state.db, username, domain or "")
        if account is None and domain and look_up_unknown and state.resolve_account is not None:
            unknown.append((username, domain))
        elif account is not None and not account.suspended and account.deleted_at is None:
            resolved[(username, domain)] = _mention_target(account)
    resolve = state.resolve_account
    if unknown and resolve is not None:
        lookups = {asyncio.ensure_future(resolve(f"{u}@{d}")): (u, d)
                   for u, d in unknown[:MAX_MENTION_LOOKUPS]}
        done, pending = await asyncio.wait(lookups, timeout=MENTION_LOOKUP_SECONDS)
        for task in pending:
            task.cancel()
        for task in done:
            account = task.result() if task.exception() is None else None
            if account is not None and not account.suspended and account.deleted_at is None:
                resolved[lookups[task]] = _mention_target(account)
    return resolved


def _mention_target(account: Account) -> text.MentionTarget:
    return text.MentionTarget(url=account.url, username=account.username, account_id=account.id)


class ProfileChanges(msgspec.Struct, kw_only=True):
    display_name: str | None = None
    note: str | None = None
    locked: bool | None = None
    bot: bool | None = None
    discoverable: bool | None = None
    fields: list[tuple[str, str]] | None = None
    privacy: str | None = None
    sensitive: bool | None = None
    language: str | None = None
    avatar_url: str | None = None
    header_url: str | None = None


async def update_profile(state: State, account: Account, ch: ProfileChanges) -> Account:
    changes: dict[str, Any] = {}
    prefs: dict[str, Any] = {}
    if ch.display_name is not None:
        if len(ch.display_name) > 30:
            raise Unprocessable("Display name is too long (maximum is 30 characters)")
        changes["display_name"] = ch.display_name
    if ch.note is not None:
        if len(ch.note) > 500:
            raise Unprocessable("Note is too long (maximum is 500 characters)")
        changes["note_source"] = ch.note
        changes["note"] = await render_note(state, ch.note)
    for flag in ("locked", "bot", "discoverable"):
        if getattr(ch, flag) is not None:
            changes[flag] = int(getattr(ch, flag))
    if ch.fields is not None:
        if len(ch.fields) > MAX_FIELDS:
            raise Unprocessable(f"Too many profile fields (maximum is {MAX_FIELDS})")
        rendered = []
        for name, value in ch.fields:
            if len(name) > 255 or len(value) > 255:
                raise Unprocessable("Profile field is too long (maximum is 255 characters)")
            if name.strip() or value.strip():
                html_value = text.render(value, state.base_url, state.domain, {}).html
                html_value = html_value.removeprefix("<p>").removesuffix("</p>")
                rendered.append([name.strip(), html_value, value])
        changes["fields"] = msgspec.json.encode(rendered).decode()
    if ch.avatar_url is not None:
        changes["avatar_url"] = ch.avatar_url
    if ch.header_url is not None:
        changes["header_url"] = ch.header_url
    if ch.privacy is not None:
        if ch.privacy not in ("public", "unlisted", "private", "direct"):
            raise Unprocessable("Default privacy must be public, unlisted, private or direct")
        prefs["default_visibility"] = ch.privacy
    if ch.sensitive is not None:
        prefs["default_sensitive"] = int(ch.sensitive)
    if ch.language is not None:
        prefs["default_language"] = ch.language or None
    async with state.db.transaction() as tx:
        await store.update_profile(tx, account.id, changes)
        await store.update_user_prefs(tx, account.id, prefs)
        if account.local:
            await state.events.record(tx, ProfileUpdated(account_id=account.id))
    updated = await store.get(state.db, account.id)
    assert updated is not None
    return updated


async def require_account(state: State, account_id: int | None) -> Account:
    """The account, as the rendering cache keeps it (current as of the request: every change to an
    account's row reaches the cache through the invalidation feed); 404 when gone, suspended or deleted."""
    account = await loaders.account(state, account_id) if account_id is not None else None
    if account is None or account.suspended or account.deleted_at is not None:
        raise NotFound()
    return account


async def with_user(state: State, account: Account) -> tuple[Account, User | None]:
    """A signed-in account with its user settings, for the credential account entity."""
    return account, await store.user(state.db, account.id)


async def lookup(state: State, acct: str) -> Account:
    """An account by `user` or `user@domain`; a remote one we do not know is fetched when federation
    runs. 404 for unknown, suspended or deleted accounts."""
    acct = acct.strip().lstrip("@")
    if not acct:
        raise Unprocessable("acct is required")
    username, _, domain = acct.partition("@")
    if domain.lower() == state.domain:
        domain = ""
    account = await store.by_username(state.db, username, domain)
    resolver = state.resolve_account  # None unless federation runs
    if account is None and domain and resolver is not None:
        account = await resolver(f"{username}@{domain}")
    if account is None or account.suspended or account.deleted_at:
        raise NotFound()
    return account


async def existing(state: State, account_id: int) -> Account:
    """An account that must exist (a session or token names it); 404 if it is gone."""
    account = await store.get(state.db, account_id)
    if account is None:
        raise NotFound()
    return account

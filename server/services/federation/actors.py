"""Remote actors: found through WebFinger, fetched (signed, boundary-checked), stored and refreshed."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import msgspec

from federation import html as ap_html
from federation import models as ap
from server.domain.records import Account
from server.ids import parse_iso
from server.services.federation.client import RemoteError
from server.state import State
from server.storage import accounts as account_store
from server.storage import remote_actors
from server.storage.errors import IntegrityError

log = logging.getLogger("crosstalk.federation")
ACTOR_REFRESH_SECONDS = 24 * 3600
MAX_USERNAME = 100


async def webfinger(state: State, acct: str) -> str:
    """The actor URL WebFinger gives for `user@domain` (boundary-checked and logged like a fetch)."""
    return await state.remote.webfinger(acct)


async def actor(state: State, uri: str, refresh: bool = False, webfingered: str | None = None) -> Account:
    """A remote actor by URI: from the database when fresh, else fetched and stored. `webfingered`
    is the `user@domain` whose WebFinger answer was just this URI."""
    if ap.host_of(uri) == state.domain:
        local = await account_store.by_uri(state.db, uri)
        if local is None:
            raise RemoteError(f"no local actor {uri}")
        return local
    known = await account_store.by_uri(state.db, uri)
    if known is not None and not refresh and known.fetched_at and not _stale(known.fetched_at):
        return known
    locks = state.remote.actor_locks
    lock = locks.setdefault(uri, asyncio.Lock())
    async with lock:
        known = await account_store.by_uri(state.db, uri)
        if known is not None and not refresh and known.fetched_at and not _stale(known.fetched_at):
            return known
        try:
            return await store_actor(state, await state.remote.fetch(uri),
                                     webfingered=(webfingered, uri) if webfingered else None)
        except RemoteError:
            if known is not None:
                return known
            raise
        finally:
            locks.pop(uri, None)


async def store_actor(state: State, doc: dict[str, Any], *, key_id: str | None = None,
                      webfingered: tuple[str, str] | None = None) -> Account:
    """Store (or refresh) a remote actor document. `key_id`: the key to keep when it lists several;
    `webfingered`: (user@domain, actor URL) of a WebFinger answer just received."""
    try:
        parsed = ap.parse_actor(doc, require_username=False)
    except ap.InvalidObject as exc:
        raise RemoteError(f"unusable actor: {exc.reason if hasattr(exc, 'reason') else exc}") from exc
    domain = ap.host_of(parsed.id)
    if domain == state.domain:
        raise RemoteError("refusing to store a remote copy of a local actor")
    if parsed.inbox and not ap.same_host(parsed.inbox, parsed.id):
        raise RemoteError("actor inbox is on another host")
    key = next((k for k in parsed.public_keys if k.id == key_id), None) or next(iter(parsed.public_keys), None)
    fields = [[ap_html.sanitize_html(n), ap_html.sanitize_html(v), ap_html.html_to_text(v)] for n, v in parsed.fields][:20]
    values = {
        "username": await _handle(state, parsed, webfingered), "domain": domain,
        "display_name": (parsed.name or "")[:200], "note": ap_html.sanitize_html(parsed.summary or ""),
        "fields": msgspec.json.encode(fields).decode(), "locked": int(parsed.manually_approves_followers),
        "bot": int(parsed.type in ("Application", "Service")), "discoverable": int(parsed.discoverable),
        "avatar_url": parsed.icon_url or "", "header_url": parsed.image_url or "", "uri": parsed.id,
        "url": parsed.url or parsed.id, "inbox_url": parsed.inbox, "shared_inbox_url": parsed.shared_inbox or "",
        "outbox_url": parsed.outbox or "", "followers_url": parsed.followers or "",
        "following_url": parsed.following or "", "featured_url": parsed.featured or "",
        "public_key_pem": key.pem if key else "", "key_id": key.id if key else "",
        "actor_type": parsed.type, "moved_to_uri": parsed.moved_to,
    }
    try:
        async with state.db.transaction() as tx:
            account_id = await remote_actors.upsert_remote_account(tx, values)
    except IntegrityError:
        # Another transaction stored the same actor at the same moment (an actor's first requests come
        # several at once, each fetching its key): its insert won the handle's unique index, which ON
        # CONFLICT (uri) does not cover. The actor is there now: this one refreshes it.
        async with state.db.transaction() as tx:
            account_id = await remote_actors.upsert_remote_account(tx, values)
    account = await account_store.get(state.db, account_id)
    assert account is not None
    return account


async def _handle(state: State, parsed: ap.ParsedActor, webfingered: tuple[str, str] | None) -> str:
    """The username we show: the actor's preferredUsername once WebFinger on the actor's host confirms
    that the name leads back to this actor (as Mastodon and GoToSocial check), else the path of its
    id. A path always starts with '/', which no confirmed name holds, so an actor can never take over
    another's handle by claiming its name."""
    name = parsed.preferred_username
    domain = ap.host_of(parsed.id)
    if name and len(name) <= MAX_USERNAME and not any(c.isspace() or c in "@/?#:" for c in name):
        acct = f"{name}@{domain}"
        if webfingered is not None and webfingered[0].lower() == acct.lower() and webfingered[1] == parsed.id:
            return name
        known = await account_store.by_uri(state.db, parsed.id)
        if known is not None and known.username == name:  # confirmed when first stored
            return name
        try:
            if await webfinger(state, acct) == parsed.id:
                return name
        except RemoteError as exc:
            log.info("%s is not confirmed by WebFinger: %s", acct, exc)
    parts = urlsplit(parsed.id)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _stale(fetched_at: str) -> bool:
    return time.time() - parse_iso(fetched_at).timestamp() > ACTOR_REFRESH_SECONDS

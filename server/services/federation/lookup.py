"""What a user types into search, resolved: a `user@domain` handle or a pasted URL → the account or
post it names, fetched when we do not have it yet. Installed as `state.resolve_account` and
`state.resolve_url` in processes that federate."""

from __future__ import annotations

import logging

from federation import models as ap
from server.domain.records import Account, Status
from server.services.federation import actors, notes
from server.services.federation.client import RemoteError
from server.state import State
from server.storage import accounts as account_store
from server.storage import remote_posts
from server.storage import statuses as status_store

log = logging.getLogger("crosstalk.federation")


async def resolve_account(state: State, acct: str) -> Account | None:
    """`user@domain` → account, through WebFinger for accounts we have not seen."""
    username, _, domain = acct.strip().lstrip("@").partition("@")
    if not domain or domain.lower() == state.domain:
        return await account_store.by_username(state.db, username)
    known = await account_store.by_username(state.db, username, domain.lower())
    if known is not None:
        return known
    try:
        actor_url = await actors.webfinger(state, f"{username}@{domain}")
        return await actors.actor(state, actor_url, webfingered=f"{username}@{domain}")
    except RemoteError as exc:
        log.info("could not resolve %s: %s", acct, exc)
        return None


async def resolve_url(state: State, url: str) -> Account | Status | None:
    """A URL pasted into search: a known status or account, or fetched."""
    found = await status_store.by_uri(state.db, url)
    if found is not None:
        return found
    account = await account_store.by_uri(state.db, url)
    if account is not None:
        return account
    by_url = await remote_posts.status_id_by_url(state.db, url)
    if by_url is not None:
        return await status_store.get(state.db, by_url)
    try:
        doc = await state.remote.fetch(url)
    except RemoteError:
        return None
    kind = ap.first_str(doc.get("type"))
    if kind in ap.ACTOR_TYPES:
        return await actors.store_actor(state, doc)
    try:
        return await notes.note(state, doc, source=ap.host_of(url))
    except RemoteError:
        return None

"""What our ActivityPub and WebFinger endpoints serve: local actors and public posts, looked up with
the rules of what may be served, and loaded (in batched queries) for the pure renderer
(server/render/activitypub.py)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from federation import documents as docs
from server.domain.records import Account, Status
from server.render import activitypub as render_ap
from server.services import groups
from server.services.errors import Gone, NotFound
from server.services.federation import inbound, keys
from server.state import State
from server.storage import accounts as account_store
from server.storage import polls as poll_store
from server.storage import relations
from server.storage import statuses as status_store

PAGE_SIZE = 20
MAX_FOLLOW_PAGE = 10_000  # page numbers beyond this are empty anyway; keeps LIMIT in range
# What an unsigned fetch gets of an actor in secure mode: only what key discovery needs, so two secure
# servers never deadlock.
KEY_DISCOVERY_FIELDS = ("@context", "id", "type", "preferredUsername", "inbox", "outbox", "followers", "following",
                        "endpoints", "publicKey", "url")


def is_public(status: Status) -> bool:
    """May be served to other servers: public or unlisted, not deleted, never local-only."""
    return status.visibility in ("public", "unlisted") and status.deleted_at is None and not status.local_only


# -- actors --------------------------------------------------------------------------------------------

async def local_actor(state: State, username: str, suspended_too: bool = False) -> Account:
    """A local actor by username (not the instance actor). A suspended one only when `suspended_too`
    (it is still served, marked suspended, as Mastodon does); a deleted one is gone."""
    account = await account_store.by_username(state.db, username)
    if account is None or account.actor_type == "Application":
        raise NotFound()
    if account.deleted_at is not None or (account.suspended and not suspended_too):
        raise Gone("Gone")
    return account


async def actor_document(state: State, account: Account, suspended: bool = False) -> dict[str, Any]:
    """A local account's actor document (its key made on first use), marked suspended if asked."""
    doc = render_ap.actor_document(state.base_url, account, await keys.public_key_pem(state, account))
    if suspended:
        doc["suspended"] = True
    return doc


async def actor_for_fetch(state: State, account: Account, request: inbound.SignedRequest) -> dict[str, Any]:
    """The actor document for a fetch: whole for a verified signer (or anyone, outside secure mode);
    in secure mode an unsigned fetch gets only what key discovery needs. Raises NotFound for a group
    not served outside, and InboxRejection."""
    if not await groups.served_outside(state, account):
        raise NotFound()
    doc = await actor_document(state, account, suspended=bool(account.suspended))
    if inbound.is_signed(request.headers) or not state.settings.federation.authorized_fetch:
        await inbound.authorize_fetch(state, request)
        return doc
    return {k: v for k, v in doc.items() if k in KEY_DISCOVERY_FIELDS}


async def instance_actor_document(state: State) -> dict[str, Any]:
    account = await account_store.get(state.db, state.remote.instance_actor_id)
    assert account is not None
    return render_ap.instance_actor_document(state.base_url, state.domain, account)


async def webfinger_account(state: State, kind: str, value: str) -> tuple[Account, str]:
    """The local account a WebFinger resource names, with the page that shows it. The instance actor
    answers under its own name and the domain's. Raises NotFound or Gone."""
    instance_name = docs.instance_actor_username(state.domain)
    account = None
    if kind == "acct" and value.lower() in (state.domain, instance_name):  # Mastodon's name for it, and ours
        account = await account_store.get(state.db, state.remote.instance_actor_id)
    elif kind == "acct":
        account = await account_store.by_username(state.db, value)
    else:
        account = await account_store.by_uri(state.db, value) or await account_store.by_profile_url(state.db, value)
    if account is None or not account.local or not await groups.served_outside(state, account):
        raise NotFound()
    if account.deleted_at is not None or account.suspended:
        raise Gone("Gone")
    if account.id == state.remote.instance_actor_id:
        return account, render_ap.instance_actor_page(state.base_url)
    return account, account.url


async def usage_counts(state: State) -> dict[str, int]:
    return await account_store.usage_counts(state.db)


# -- notes ---------------------------------------------------------------------------------------------

async def public_status(state: State, username: str, status_id: int | None) -> tuple[Account, Status]:
    """A local actor's post as served to other servers (no boosts). Raises NotFound or Gone."""
    account = await local_actor(state, username)
    status = await status_store.get(state.db, status_id) if status_id is not None else None
    if status is None or status.account_id != account.id or status.reblog_of_id is not None:
        raise NotFound()
    if status.deleted_at is not None:
        raise Gone("Gone")
    if not is_public(status):
        raise NotFound()
    return account, status


async def note_parts(state: State, statuses: Iterable[Status]) -> dict[int, render_ap.NoteParts]:
    """status id → what its note document needs, for many statuses in a fixed number of queries."""
    statuses = list(statuses)
    ids = [s.id for s in statuses]
    mentions = await status_store.mentions_for(state.db, ids)
    accounts = await account_store.get_many(
        state.db, [s.account_id for s in statuses] + [a for found in mentions.values() for a in found])
    parents = await status_store.get_many(state.db, [s.in_reply_to_id for s in statuses if s.in_reply_to_id])
    tags = await status_store.tags_for(state.db, ids)
    media = await status_store.media_rows_for(state.db, ids)
    polls = await poll_store.for_statuses(state.db, ids)
    replies = await status_store.public_replies_for(state.db, [s.id for s in statuses if s.replies_count],
                                                    render_ap.REPLIES_PAGE + 1)
    out = {}
    for s in statuses:
        parent = parents.get(s.in_reply_to_id) if s.in_reply_to_id is not None else None
        out[s.id] = render_ap.NoteParts(
            author=accounts[s.account_id], mentioned=[accounts[a] for a in mentions.get(s.id, []) if a in accounts],
            parent_uri=parent.uri if parent else None, tags=tags.get(s.id, []), media=media.get(s.id, []),
            poll=polls.get(s.id), replies=replies.get(s.id, []))
    return out


async def note_documents(state: State, statuses: Iterable[Status]) -> list[dict[str, Any]]:
    """Note documents of these statuses, in order."""
    statuses = list(statuses)
    parts = await note_parts(state, statuses)
    return [render_ap.note_document(state.base_url, state.domain, s, parts[s.id]) for s in statuses]


async def note_document(state: State, status: Status) -> dict[str, Any]:
    return (await note_documents(state, [status]))[0]


async def replies(state: State, status: Status, min_id: int | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(collection, page) of a post's public replies after `min_id`."""
    rows = (await status_store.public_replies(state.db, status.id, min_id, render_ap.REPLIES_PAGE + 1)
            if status.replies_count else [])
    return render_ap.replies_collection(status, rows, min_id)


async def context_members(state: State, root_id: int | None) -> tuple[str, list[Status]]:
    """(collection id, public posts) of the conversation a post roots (FEP-7888). Raises NotFound."""
    root = await status_store.get(state.db, root_id) if root_id is not None else None
    if root is None or root.local_only:
        raise NotFound()
    members = [m for m in await status_store.thread_members(state.db, root.thread_id or root.id) if is_public(m)]
    return render_ap.context_url(state.base_url, root), members


# -- collections ---------------------------------------------------------------------------------------

async def outbox_page(state: State, account: Account, max_id: int | None) -> tuple[list[int], list[dict[str, Any]]]:
    """(status ids, Create activities) of a page of an account's outbox, newest first."""
    ids = await status_store.public_ids_of(state.db, account.id, PAGE_SIZE, max_id)
    found = await status_store.get_many(state.db, ids)
    notes = await note_documents(state, [found[i] for i in ids if i in found])
    return ids, [render_ap.create_activity(n) for n in notes]


async def follow_page(state: State, account: Account, direction: str, page_no: int) -> tuple[list[str], bool]:
    """(actor URIs, whether a next page exists) of page `page_no` of an account's followers or following."""
    page_no = min(page_no, MAX_FOLLOW_PAGE)
    rows = await relations.followers_page(state.db, account.id, direction, None, None, PAGE_SIZE * page_no + 1)
    rows = rows[PAGE_SIZE * (page_no - 1):]
    found = await account_store.get_many(state.db, [a for _, a in rows[:PAGE_SIZE]])
    return [found[a].uri for _, a in rows[:PAGE_SIZE] if a in found], len(rows) > PAGE_SIZE


async def featured_notes(state: State, account: Account) -> list[dict[str, Any]]:
    """Note documents of an account's public pinned posts, in pin order."""
    ids = await status_store.pinned_ids(state.db, account.id)
    found = await status_store.get_many(state.db, ids)
    return await note_documents(state, [found[i] for i in ids if i in found and is_public(found[i])])

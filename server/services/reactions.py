"""Emoji reactions ("kudos") on statuses: the Pleroma/Akkoma API clients speak, notifications of type
`pleroma:emoji_reaction`, and `EmojiReact` (FEP-c0e0) to and from other servers. A favourite stays a
favourite: reactions are a separate thing, as on Akkoma."""

from __future__ import annotations

import unicodedata
from typing import Any

from federation import documents as docs
from federation.models import host_of
from server.domain.events import DomainEvent, Reacted, Unreacted
from server.domain.records import Account, Status
from server.ports import Tx
from server.services import notify
from server.services import statuses as status_service
from server.services.errors import NotFound, Unprocessable
from server.services.statuses import visible_status
from server.state import State
from server.storage import accounts as account_store
from server.storage import reactions as store
from server.storage import statuses as status_store

MAX_NAME = 32


def check_emoji(name: str) -> str:
    """One Unicode emoji (a short grapheme sequence of symbols); custom `:shortcode:` emoji are not
    hosted here, so they are refused."""
    name = name.strip()
    if not name or len(name) > MAX_NAME or any(c.isspace() for c in name):
        raise Unprocessable("The reaction must be one emoji")
    if not any(unicodedata.category(c) == "So" for c in name) or any(
            unicodedata.category(c)[0] in "LNP" for c in name):
        raise Unprocessable("The reaction must be one emoji")
    return name


async def react(state: State, account: Account, status_id: int, name: str, uri: str | None = None) -> Status:
    name = check_emoji(name) if account.local else name.strip()[:64]
    if not name:
        raise Unprocessable("The reaction must be one emoji")
    status = await visible_status(state, account.id, status_id)
    if status.reblog_of_id is not None:
        status = await visible_status(state, account.id, status.reblog_of_id)
    async with state.db.transaction() as tx:
        if await store.add(tx, account.id, status.id, name, uri):
            await state.events.record(tx, Reacted(account_id=account.id, status_id=status.id, name=name))
    return status


async def unreact(state: State, account: Account, status_id: int, name: str | None,
                  uri: str | None = None) -> Status:
    status = await status_store.get(state.db, status_id)
    if status is None:
        raise NotFound()
    async with state.db.transaction() as tx:
        for removed in await store.remove(tx, account.id, status.id, name, uri):
            await state.events.record(tx, Unreacted(account_id=account.id, status_id=status.id, name=removed))
    return status


async def summary(state: State, viewer: Account | None, status_id: int,
                  name: str | None = None) -> list[tuple[str, int, bool, list[Account]]]:
    status = await visible_status(state, viewer.id if viewer else None, status_id)
    rows = await store.summary(state.db, status.id, viewer.id if viewer else None)
    if name is not None:
        rows = [r for r in rows if r[0] == name]
    found = await account_store.get_many(state.db, {a for r in rows for a in r[3]})
    return [(n, count, me, [found[a] for a in ids if a in found]) for n, count, me, ids in rows]


async def notify_in_tx(tx: Tx, events: list[tuple[int, DomainEvent]]) -> list[Any]:
    """The author hears of a reaction (inside the recording transaction, as every notification)."""
    notes = []
    for event_id, event in events:
        if isinstance(event, Reacted):
            status = await status_store.get(tx, event.status_id)
            if status is not None and status.deleted_at is None:
                notes.append(await notify.create(tx, event_id, status.account_id, event.account_id,
                                                 "pleroma:emoji_reaction", status.id))
    return notes


# -- from elsewhere: Like with content (Misskey), EmojiReact, and their Undo --------------------------

def like_reaction(doc: dict[str, Any]) -> str:
    """The emoji a `Like` carries (Misskey sends `content`, and `_misskey_reaction`); "" for a plain Like."""
    for key in ("content", "_misskey_reaction"):
        value = doc.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:64]
    return ""


async def apply_remote(state: State, actor: Account, status: Status, kind: str, doc: dict[str, Any]) -> None:
    """A remote actor's `Like` or `EmojiReact` of a post we hold: a Like with an emoji is a reaction (a
    plain one stays a favourite); raises NotFound when the actor may not see the post."""
    name = like_reaction(doc)
    activity_id = doc.get("id") if isinstance(doc.get("id"), str) else None
    if kind == "EmojiReact" or name:
        if name:
            await react(state, actor, status.id, name, uri=activity_id)
        return
    await status_service.favourite(state, actor, status.id, uri=activity_id)


async def undo_remote(state: State, actor: Account, status: Status, kind: str | None, doc: dict[str, Any] | None,
                      activity_id: str | None) -> None:
    """Undo of a remote Like or EmojiReact: the reaction it made (by its id or emoji), or the favourite."""
    name = like_reaction(doc) if doc is not None else ""
    reacted = bool(name) or (activity_id is not None and await store.has_uri(state.db, actor.id, status.id,
                                                                            activity_id))
    if kind == "EmojiReact" or reacted:
        await unreact(state, actor, status.id, name or None, activity_id)
    else:
        await status_service.unfavourite(state, actor, status.id)


# -- federation: EmojiReact to the post's author ------------------------------------------------------

async def on_event(state: State, event_id: int, event: DomainEvent) -> None:
    if not isinstance(event, Reacted | Unreacted):
        return
    account = await account_store.get(state.db, event.account_id)
    status = await status_store.get(state.db, event.status_id)
    if account is None or not account.local or status is None or status.local or status.local_only:
        return
    author = await account_store.get(state.db, status.account_id)
    if author is None or not author.inbox_url:
        return
    react_doc = docs.activity("EmojiReact", f"{account.uri}#reactions/{status.id}/{_slug(event.name)}", account.uri,
                              status.uri, to=[author.uri])
    react_doc["content"] = event.name
    activity = react_doc if isinstance(event, Reacted) else docs.activity(
        "Undo", f"{react_doc['id']}/undo/{event_id}", account.uri, react_doc, to=[author.uri])
    await _send(state, event_id, account, activity, author.inbox_url)


def _slug(name: str) -> str:
    return "-".join(f"{ord(c):x}" for c in name)


async def _send(state: State, event_id: int, sender: Account, activity: dict[str, Any], inbox: str) -> None:
    import msgspec

    from server.storage import deliveries as delivery_store

    host = host_of(inbox)
    if not host or host == state.domain:
        return
    plan = await state.boundary.plan_delivery(sender, activity, [(inbox, host)])
    async with state.db.transaction() as tx:
        if not await delivery_store.claim_event_activity(tx, event_id, activity["id"]):
            return
        for variant, hosts in plan:
            await delivery_store.enqueue(tx, variant["id"], sender.id, msgspec.json.encode(variant), hosts)
    state.jobs.wake("delivery")

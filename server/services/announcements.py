"""Announcements: instance-wide notices the admins write (crosstalk admin announce), which users
mark as read and react to with emoji."""

from __future__ import annotations

from datetime import datetime

import msgspec

from server.bus.memory import StreamEvent
from server.domain import text
from server.domain.records import Account, Announcement
from server.ids import iso, now_iso
from server.render.bundles import AnnouncementPage
from server.services import accounts as account_service
from server.services.errors import NotFound, Unprocessable
from server.state import State
from server.storage import accounts
from server.storage import announcements as store

MAX_REACTION_KINDS = 8  # distinct emoji per announcement, as in Mastodon
_encoder = msgspec.json.Encoder()

# Code points that make up Unicode emoji sequences: pictographs, symbols, and the joiners,
# modifiers and tags used to combine them.
_EMOJI_RANGES = (
    (0x1F000, 0x1FAFF), (0x2600, 0x27BF), (0x2300, 0x23FF), (0x2B00, 0x2BFF), (0x2190, 0x21FF),
    (0x25A0, 0x25FF), (0x2900, 0x297F), (0x3030, 0x3030), (0x303D, 0x303D), (0x3297, 0x3297),
    (0x3299, 0x3299), (0x00A9, 0x00A9), (0x00AE, 0x00AE), (0x203C, 0x203C), (0x2049, 0x2049),
    (0x2122, 0x2122), (0x2139, 0x2139), (0x24C2, 0x24C2),
)
_JOINERS = {0x200D, 0xFE0F, 0xFE0E, 0x20E3}
_KEYCAP_BASES = set("0123456789#*")


def is_unicode_emoji(name: str) -> bool:
    """True for exactly one emoji (possibly a ZWJ, skin-tone, flag, keycap or tag sequence)."""
    if not name or len(name) > 16:
        return False
    units = 0  # emoji the string shows: a ZWJ joins, modifiers and selectors add nothing, flags pair up
    previous = 0
    open_flag = False
    for i, ch in enumerate(name):
        cp = ord(ch)
        if cp in _JOINERS or 0x1F3FB <= cp <= 0x1F3FF or 0xE0020 <= cp <= 0xE007F:
            pass
        elif ch in _KEYCAP_BASES and i == 0 and len(name) > 1 and ord(name[-1]) == 0x20E3:
            units += 1
        elif any(lo <= cp <= hi for lo, hi in _EMOJI_RANGES):
            if 0x1F1E6 <= cp <= 0x1F1FF and open_flag:
                open_flag = False  # second half of a flag
            elif previous != 0x200D:
                units += 1
                open_flag = 0x1F1E6 <= cp <= 0x1F1FF
        else:
            return False
        previous = cp
    return units == 1


async def create(state: State, body: str, *, starts_at: datetime | None = None, ends_at: datetime | None = None,
                 all_day: bool = False) -> Announcement:
    body = body.strip()
    if not body:
        raise Unprocessable("Text can't be blank")
    limit = state.settings.statuses.max_characters
    if len(body) > limit:
        raise Unprocessable(f"Text character limit of {limit} exceeded")
    if (starts_at is None) != (ends_at is None):
        raise Unprocessable("Give both a start and an end, or neither")
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise Unprocessable("The end must come after the start")
    if all_day and starts_at is None:
        raise Unprocessable("An all-day announcement needs a start and an end")
    handles = text.extract_mentions(body, state.domain)
    resolved = await account_service.resolve_mentions(state, handles)
    rendered = text.render(body, state.base_url, state.domain, resolved)
    mentioned = []
    for username, domain in rendered.mentions:
        account = await accounts.by_username(state.db, username, domain or "")
        if account is not None:
            mentioned.append(account.id)
    async with state.db.transaction() as tx:
        return await store.insert(tx, text=body, content=rendered.html,
                                  starts_at=iso(starts_at) if starts_at else None,
                                  ends_at=iso(ends_at) if ends_at else None, all_day=all_day, mention_ids=mentioned)


async def delete(state: State, announcement_id: int) -> None:
    async with state.db.transaction() as tx:
        if not await store.delete(tx, announcement_id):
            raise NotFound(f"no announcement {announcement_id}")
    await _tell_everyone(state, "announcement.delete", str(announcement_id))


async def active(state: State, viewer: Account | None) -> AnnouncementPage:
    """The published, unexpired announcements with the viewer's read state and reactions."""
    items = await store.active(state.db, now_iso())
    viewer_id = viewer.id if viewer else None
    ids = [a.id for a in items]
    read = await store.read_ids(state.db, viewer_id, ids) if viewer_id is not None else set()
    reactions = await store.reactions_for(state.db, ids, viewer_id)
    mentions = await store.mentions_for(state.db, ids)
    people = await accounts.get_many(state.db, {m for ms in mentions.values() for m in ms})
    return AnnouncementPage(viewer_id=viewer_id, items=items, read=read, reactions=reactions, mentions=mentions,
                            accounts=people)


async def active_one(state: State, announcement_id: int) -> Announcement:
    item = await store.get(state.db, announcement_id)
    if item is None or not item.published or (item.ends_at is not None and item.ends_at <= now_iso()):
        raise NotFound()
    return item


async def dismiss(state: State, account: Account, announcement_id: int) -> None:
    item = await active_one(state, announcement_id)
    async with state.db.transaction() as tx:
        await store.mark_read(tx, item.id, account.id)


async def react(state: State, account: Account, announcement_id: int, name: str) -> None:
    item = await active_one(state, announcement_id)
    if not is_unicode_emoji(name):
        raise Unprocessable("Name is not a recognized emoji")
    names = await store.reaction_names(state.db, item.id)
    if name not in names and len(names) >= MAX_REACTION_KINDS:
        raise Unprocessable("Maximum number of reactions reached")
    async with state.db.transaction() as tx:
        if not await store.add_reaction(tx, item.id, account.id, name):
            raise Unprocessable("You have already reacted with this emoji")
    await _reaction_changed(state, item.id, name)


async def unreact(state: State, account: Account, announcement_id: int, name: str) -> None:
    item = await active_one(state, announcement_id)
    async with state.db.transaction() as tx:
        if not await store.remove_reaction(tx, item.id, account.id, name):
            raise NotFound()
    await _reaction_changed(state, item.id, name)


async def _reaction_changed(state: State, announcement_id: int, name: str) -> None:
    count = await store.reaction_count(state.db, announcement_id, name)
    payload = {"name": name, "count": count, "announcement_id": str(announcement_id)}
    await _tell_everyone(state, "announcement.reaction", _encoder.encode(payload).decode())


async def _tell_everyone(state: State, name: str, payload: str) -> None:
    """Streaming events every local user receives on their user stream; payload is the JSON text."""
    for account_id in await store.local_account_ids(state.db):
        state.bus.publish(StreamEvent(topic=f"user:{account_id}", name=name, payload=payload, account_id=account_id))

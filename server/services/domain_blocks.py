"""Domains a user hides for themselves: that domain's posts and notifications stop reaching them,
and their followers there are removed (as in Mastodon)."""

from __future__ import annotations

import re

from server.domain.paging import Page
from server.domain.records import Account
from server.services import social
from server.services.errors import Unprocessable
from server.services.streaming import relations_changed
from server.state import State
from server.storage import accounts, relations
from server.storage import domain_blocks as store

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*(?::\d{{1,5}})?$")


def normalize(raw: str | None) -> str:
    """A host name as accounts store it: lower case, IDNA (punycode), optional port."""
    text = (raw or "").strip().lower().rstrip(".")
    if not text:
        raise Unprocessable("Domain can't be blank")
    host, sep, port = text.partition(":")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise Unprocessable(f"{raw} is not a valid domain") from None
    domain = host + sep + port
    if len(domain) > 253 or not _DOMAIN.match(domain):
        raise Unprocessable(f"{raw} is not a valid domain")
    return domain


async def block(state: State, account: Account, raw: str | None) -> None:
    domain = normalize(raw)
    if domain == state.domain.lower():
        raise Unprocessable("You cannot block your own domain")
    async with state.db.transaction() as tx:
        await store.add(tx, account.id, domain)
    relations_changed(state, account.id)
    for follower_id in await store.follower_ids_from(state.db, account.id, domain):
        follower = await accounts.get(state.db, follower_id)
        if follower is None:
            continue
        if await relations.follow(state.db, follower_id, account.id) is not None:
            await social.remove_follower(state, account, follower)
        if await relations.follow_request(state.db, follower_id, account.id) is not None:
            await social.answer_request(state, account, follower, accept=False)


async def unblock(state: State, account: Account, raw: str | None) -> None:
    domain = normalize(raw)
    async with state.db.transaction() as tx:
        await store.remove(tx, account.id, domain)
    relations_changed(state, account.id)


async def page_for(state: State, account: Account, page: Page) -> list[tuple[int, str]]:
    """(row id, domain) of the domains the account blocks, newest first."""
    return await store.page_for(state.db, account.id, page)

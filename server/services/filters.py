"""Filters: the v2 rules (keywords, statuses, contexts, warn/hide, expiry) and v1 filters mapped onto
keywords, and loading a viewer's active filters compiled for matching (the matching itself is pure:
server/domain/filters.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from server.bus.memory import StreamEvent
from server.domain.filters import ActiveFilter, compile_filters
from server.domain.records import Account, Filter, FilterKeyword, FilterStatus
from server.ids import iso, now_iso
from server.ports import Reader
from server.render.lists_filters import filter_json
from server.services import statuses as status_service  # a module import: statuses → loaders → filters
from server.services.errors import NotFound, Unprocessable
from server.state import State
from server.storage import filters as store

CONTEXTS = ("home", "notifications", "public", "thread", "account")
ACTIONS = ("warn", "hide", "blur")
MAX_TEXT = 1000
MAX_KEYWORDS = 200


# -- changing filters ------------------------------------------------------------------------------

class KeywordChange(msgspec.Struct):
    keyword: str | None = None
    whole_word: bool | None = None
    id: int | None = None
    destroy: bool = False


def _title(title: str | None) -> str:
    title = (title or "").strip()
    if not title:
        raise Unprocessable("Title can't be blank")
    if len(title) > MAX_TEXT:
        raise Unprocessable(f"Title is too long (maximum is {MAX_TEXT} characters)")
    return title


def _context(context: list[Any]) -> str:
    values = [str(c).strip() for c in context if str(c).strip()]
    if not values or any(c not in CONTEXTS for c in values):
        raise Unprocessable("Context None or invalid context supplied")
    return msgspec.json.encode(list(dict.fromkeys(values))).decode()


def _action(action: str | None) -> str:
    action = action or "warn"
    if action not in ACTIONS:
        raise Unprocessable(f"Filter action must be one of {', '.join(ACTIONS)}")
    return action


def _keyword(keyword: str | None) -> str:
    keyword = (keyword or "").strip()
    if not keyword:
        raise Unprocessable("Keyword can't be blank")
    if len(keyword) > MAX_TEXT:
        raise Unprocessable(f"Keyword is too long (maximum is {MAX_TEXT} characters)")
    return keyword


def expires_at(expires_in: int | None) -> str | None:
    if expires_in is None:
        return None
    if expires_in <= 0 or expires_in > 100 * 365 * 86400:
        raise Unprocessable("Expires in must be a positive number of seconds")
    return iso(datetime.now(UTC) + timedelta(seconds=expires_in))


def changed(state: State, account_id: int) -> None:
    """Tell the user's streams (Mastodon's filters_changed) so they reload their filters."""
    state.bus.publish(StreamEvent(topic=f"user:{account_id}", name="filters_changed", payload=None, account_id=account_id))


async def get_filter(state: State, account: Account, filter_id: int) -> Filter:
    found = await store.get(state.db, account.id, filter_id)
    if found is None:
        raise NotFound()
    return found


async def create(state: State, account: Account, *, title: str | None, context: list[Any], action: str | None,
                 expires_in: int | None, keywords: list[KeywordChange]) -> Filter:
    title_ = _title(title)
    context_ = _context(context)
    action_ = _action(action)
    expiry = expires_at(expires_in)
    words = [(_keyword(k.keyword), True if k.whole_word is None else k.whole_word) for k in keywords if not k.destroy]
    if len(words) > MAX_KEYWORDS:
        raise Unprocessable(f"A filter can have at most {MAX_KEYWORDS} keywords")
    async with state.db.transaction() as tx:
        created = await store.insert(tx, account.id, title_, context_, action_, expiry)
        for word, whole in words:
            await store.insert_keyword(tx, created.id, word, whole)
    changed(state, account.id)
    return created


KEEP: Any = object()


async def update(state: State, account: Account, filter_id: int, *, title: str | None = None,
                 context: list[Any] | None = None, action: str | None = None, expires_in: Any = KEEP,
                 keywords: list[KeywordChange] | None = None) -> Filter:
    """Change what was given; expires_in None clears the expiry, KEEP leaves it."""
    current = await get_filter(state, account, filter_id)
    title_ = current.title if title is None else _title(title)
    context_ = current.context if context is None else _context(context)
    action_ = current.action if action is None else _action(action)
    expiry = current.expires_at if expires_in is KEEP else expires_at(expires_in)
    existing = {k.id: k for k in (await store.keywords_for(state.db, [filter_id]))[filter_id]}
    plan: list[tuple[str, int | None, str, bool]] = []
    for change in keywords or []:
        if change.id is not None:
            old = existing.get(change.id)
            if old is None:
                raise NotFound("Record not found", "The keyword does not belong to this filter")
            if change.destroy:
                plan.append(("delete", old.id, "", False))
            else:
                word = old.keyword if change.keyword is None else _keyword(change.keyword)
                whole = old.whole_word if change.whole_word is None else change.whole_word
                plan.append(("update", old.id, word, whole))
        elif not change.destroy:
            plan.append(("insert", None, _keyword(change.keyword),
                         True if change.whole_word is None else change.whole_word))
    async with state.db.transaction() as tx:
        await store.update(tx, filter_id, title=title_, context=context_, action=action_, expires_at=expiry)
        for op, keyword_id, word, whole in plan:
            if op == "delete" and keyword_id is not None:
                await store.delete_keyword(tx, keyword_id)
            elif op == "update" and keyword_id is not None:
                await store.update_keyword(tx, keyword_id, word, whole)
            else:
                await store.insert_keyword(tx, filter_id, word, whole)
        if await store.count_keywords(tx, filter_id) > MAX_KEYWORDS:
            raise Unprocessable(f"A filter can have at most {MAX_KEYWORDS} keywords")
    changed(state, account.id)
    return await get_filter(state, account, filter_id)


async def delete(state: State, account: Account, filter_id: int) -> None:
    await get_filter(state, account, filter_id)
    async with state.db.transaction() as tx:
        await store.delete(tx, filter_id)
    changed(state, account.id)


async def add_keyword(state: State, account: Account, filter_id: int, keyword: str | None,
                      whole_word: bool | None) -> FilterKeyword:
    await get_filter(state, account, filter_id)
    word = _keyword(keyword)
    if await store.count_keywords(state.db, filter_id) >= MAX_KEYWORDS:
        raise Unprocessable(f"A filter can have at most {MAX_KEYWORDS} keywords")
    async with state.db.transaction() as tx:
        created = await store.insert_keyword(tx, filter_id, word, True if whole_word is None else whole_word)
    changed(state, account.id)
    return created


async def get_keyword(state: State, account: Account, keyword_id: int) -> FilterKeyword:
    found = await store.keyword(state.db, account.id, keyword_id)
    if found is None:
        raise NotFound()
    return found


async def update_keyword(state: State, account: Account, keyword_id: int, keyword: str | None,
                         whole_word: bool | None) -> FilterKeyword:
    current = await get_keyword(state, account, keyword_id)
    word = current.keyword if keyword is None else _keyword(keyword)
    whole = current.whole_word if whole_word is None else whole_word
    async with state.db.transaction() as tx:
        await store.update_keyword(tx, keyword_id, word, whole)
    changed(state, account.id)
    return await get_keyword(state, account, keyword_id)


async def delete_keyword(state: State, account: Account, keyword_id: int) -> None:
    await get_keyword(state, account, keyword_id)
    async with state.db.transaction() as tx:
        await store.delete_keyword(tx, keyword_id)
    changed(state, account.id)


async def add_status(state: State, account: Account, filter_id: int, status_id: int | None) -> FilterStatus:
    await get_filter(state, account, filter_id)
    if status_id is None:
        raise Unprocessable("Status can't be blank")
    status = await status_service.visible_status(state, account.id, status_id)
    async with state.db.transaction() as tx:
        created = await store.insert_status(tx, filter_id, status.id)
    if created is None:
        raise Unprocessable("Status has already been taken")
    changed(state, account.id)
    return created


async def get_status(state: State, account: Account, filter_status_id: int) -> FilterStatus:
    found = await store.filter_status(state.db, account.id, filter_status_id)
    if found is None:
        raise NotFound()
    return found


async def delete_status(state: State, account: Account, filter_status_id: int) -> None:
    await get_status(state, account, filter_status_id)
    async with state.db.transaction() as tx:
        await store.delete_status(tx, filter_status_id)
    changed(state, account.id)


# -- v1: one filter per keyword ----------------------------------------------------------------------

async def v1_filters(state: State, account: Account) -> list[tuple[Filter, FilterKeyword]]:
    filters = {f.id: f for f in await store.owned(state.db, account.id)}
    return [(filters[k.filter_id], k) for k in await store.keywords_of_account(state.db, account.id)
            if k.filter_id in filters]


async def v1_get(state: State, account: Account, keyword_id: int) -> tuple[Filter, FilterKeyword]:
    keyword = await get_keyword(state, account, keyword_id)
    return await get_filter(state, account, keyword.filter_id), keyword


async def v1_create(state: State, account: Account, *, phrase: str | None, context: list[Any],
                    irreversible: bool | None, whole_word: bool | None,
                    expires_in: int | None) -> tuple[Filter, FilterKeyword]:
    word = _keyword(phrase)
    context_ = _context(context)
    expiry = expires_at(expires_in)
    async with state.db.transaction() as tx:
        created = await store.insert(tx, account.id, word, context_, "hide" if irreversible else "warn", expiry)
        keyword = await store.insert_keyword(tx, created.id, word, True if whole_word is None else whole_word)
    changed(state, account.id)
    return created, keyword


async def v1_update(state: State, account: Account, keyword_id: int, *, phrase: str | None,
                    context: list[Any] | None, irreversible: bool | None, whole_word: bool | None,
                    expires_in: Any = KEEP) -> tuple[Filter, FilterKeyword]:
    current_filter, keyword = await v1_get(state, account, keyword_id)
    word = keyword.keyword if phrase is None else _keyword(phrase)
    whole = keyword.whole_word if whole_word is None else whole_word
    title = current_filter.title if phrase is None else word
    context_ = current_filter.context if context is None else _context(context)
    action = current_filter.action if irreversible is None else ("hide" if irreversible else "warn")
    expiry = current_filter.expires_at if expires_in is KEEP else expires_at(expires_in)
    filter_changed = (title, context_, action, expiry) != (current_filter.title, current_filter.context,
                                                           current_filter.action, current_filter.expires_at)
    if filter_changed and await store.count_keywords(state.db, current_filter.id) > 1:
        raise Unprocessable("These parameters cannot be changed from this application because they apply to more "
                            "than one filter keyword. Use a more recent application or the web interface.")
    async with state.db.transaction() as tx:
        await store.update_keyword(tx, keyword_id, word, whole)
        if filter_changed:
            await store.update(tx, current_filter.id, title=title, context=context_, action=action, expires_at=expiry)
    changed(state, account.id)
    return await v1_get(state, account, keyword_id)


async def v1_delete(state: State, account: Account, keyword_id: int) -> None:
    current_filter, _ = await v1_get(state, account, keyword_id)
    async with state.db.transaction() as tx:
        await store.delete_keyword(tx, keyword_id)
        # A v1 filter is its keyword; the filter it lived in goes when nothing is left in it.
        if not await store.count_keywords(tx, current_filter.id) and not (
                await store.statuses_for(tx, [current_filter.id]))[current_filter.id]:
            await store.delete(tx, current_filter.id)
    changed(state, account.id)


# -- reading, with the rules ----------------------------------------------------------------------

FullFilter = tuple[Filter, list[FilterKeyword], list[FilterStatus]]


async def with_rules(state: State, filters: list[Filter]) -> list[FullFilter]:
    """Filters with their keywords and statuses (two queries for all)."""
    ids = [f.id for f in filters]
    keywords, statuses = await store.keywords_for(state.db, ids), await store.statuses_for(state.db, ids)
    return [(f, keywords.get(f.id, []), statuses.get(f.id, [])) for f in filters]


async def owned(state: State, account: Account) -> list[FullFilter]:
    return await with_rules(state, await store.owned(state.db, account.id))


async def keywords_of(state: State, account: Account, filter_id: int) -> list[FilterKeyword]:
    f = await get_filter(state, account, filter_id)
    return (await store.keywords_for(state.db, [f.id])).get(f.id, [])


async def statuses_of(state: State, account: Account, filter_id: int) -> list[FilterStatus]:
    f = await get_filter(state, account, filter_id)
    return (await store.statuses_for(state.db, [f.id])).get(f.id, [])


async def active_filters(db: Reader, account_id: int) -> list[ActiveFilter]:
    """The account's unexpired filters, compiled: one query when there are none (the common case)."""
    filters = await store.active(db, account_id, now_iso())
    if not filters:
        return []
    ids = [f.id for f in filters]
    return compile_filters(filters, await store.keywords_for(db, ids), await store.statuses_for(db, ids),
                           lambda f: filter_json(f))

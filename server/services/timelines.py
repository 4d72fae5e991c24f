"""Reading timelines: home, public, hashtag, an account's statuses, favourites and bookmarks. Each
answers a StatusPage ready to render; the viewer's blocks and mutes keep accounts out of the query, and
`hide` filters drop statuses from the page for the timeline's context (paging still follows the
unfiltered ids)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence

from server.domain.paging import Page
from server.domain.records import Account
from server.render.bundles import StatusPage
from server.services import loaders, viewers
from server.state import State
from server.storage import statuses as status_store
from server.storage import timelines
from server.storage import viewers as viewer_store

# A page's ids leaving out these accounts, and the version of this viewer (if any) read with them.
ReadIds = Callable[[Collection[int], int | None], Awaitable[tuple[list[int], int | None]]]


async def _without_hidden_accounts(state: State, viewer_id: int | None, read: ReadIds, context: str) -> StatusPage:
    """The statuses whose ids `read` gives when told which accounts to leave out (and whose version to
    read with them): those hidden from the viewer as their kept state says, checked by the viewer's
    version read with the page (if it moved, the state and the page are read again)."""
    if viewer_id is None:
        ids, _ = await read((), None)
        return loaders.without_hidden(await loaders.statuses_by_ids(state, None, ids), context)
    kept = await viewers.kept_or_read(state, viewer_id)
    for _ in range(2):
        ids, version = await read(kept.hidden, viewer_id)
        found = await loaders.statuses_read_with(state, viewer_id, ids, kept, version)
        if found is not None:
            return loaders.without_hidden(found, context)
        kept = await viewers.at_version(state, viewer_id, None)
    # A viewer changing their state faster than pages are read: this last read is as good as any.
    ids, _ = await read(kept.hidden, None)
    return loaders.without_hidden(await loaders.statuses_by_ids(state, viewer_id, ids), context)


async def home(state: State, viewer_id: int, page: Page) -> StatusPage:
    """The viewer's home feed, leaving out the accounts hidden from them as their kept state says; the
    viewer's version read with the page says whether that state was current (if not, read it and the
    page again; a viewer changing their state faster than this keeps the last page read). The page's
    ids come from the feed's index alone; only when a status on it turns out to be hidden (a suspended
    account's) is the page read again with the statuses' rows consulted."""
    viewer = await viewers.kept_or_read(state, viewer_id)
    feed_only = True
    while True:
        for attempt in range(3):
            ids, version = await timelines.home_with_version(state.db, viewer_id, page, viewer.hidden,
                                                             feed_only=feed_only)
            if version is None:  # an empty page reads no version
                version = await viewer_store.version(state.db, viewer_id)
            if version == viewer.version or attempt == 2:
                break
            viewer = await viewers.at_version(state, viewer_id, version)
        found = await loaders.statuses_by_ids(state, viewer_id, ids, viewer_state=viewer)
        if not feed_only or (len(found.items) == len(ids) and all(s.deleted_at is None for s in found.items)):
            return loaders.without_hidden(found, "home")
        feed_only = False


async def public(state: State, viewer_id: int | None, page: Page, *, local: bool, remote: bool,
                 only_media: bool) -> StatusPage:
    async def read(hidden: Collection[int], version_of: int | None) -> tuple[list[int], int | None]:
        return await timelines.public(state.db, page, hidden, signed_in=viewer_id is not None, local=local,
                                      remote=remote, only_media=only_media, viewer_id=version_of)
    return await _without_hidden_accounts(state, viewer_id, read, "public")


TAGS_PER_PARAMETER = 4  # of any[], all[] and none[]: the rest are ignored, as Mastodon does


async def tag(state: State, viewer_id: int | None, name: str, page: Page, *, local: bool, remote: bool = False,
              only_media: bool = False, any_of: Sequence[str] = (), all_of: Sequence[str] = (),
              none_of: Sequence[str] = ()) -> StatusPage:
    """Mastodon's hashtag timeline: public posts with the tag or any tag of `any_of`, that also carry
    every tag of `all_of` and none of `none_of`."""
    async def ids_of(names: Iterable[str]) -> list[int | None]:
        return [await status_store.tag_id(state.db, n.lstrip("#")) for n in names]

    wanted = [i for i in await ids_of([name, *any_of[:TAGS_PER_PARAMETER]]) if i is not None]
    required = await ids_of(all_of[:TAGS_PER_PARAMETER])
    excluded = [i for i in await ids_of(none_of[:TAGS_PER_PARAMETER]) if i is not None]
    possible = bool(wanted) and None not in required  # a tag nobody used cannot be on every post

    async def read(hidden: Collection[int], version_of: int | None) -> tuple[list[int], int | None]:
        if not possible:
            return [], None
        return await timelines.tag(state.db, wanted, page, hidden, signed_in=viewer_id is not None, local=local,
                                   remote=remote, only_media=only_media,
                                   all_of=[i for i in required if i is not None], none_of=excluded,
                                   viewer_id=version_of)
    return await _without_hidden_accounts(state, viewer_id, read, "public")


async def account_statuses(state: State, viewer_id: int | None, account: Account, page: Page, *,
                           tagged: str | None, exclude_replies: bool, exclude_reblogs: bool, only_media: bool,
                           pinned: bool) -> StatusPage:
    """The account's statuses as the viewer may see them: nothing when either blocks the other (as the
    viewer's state at the version read with the page says) or the hashtag asked for does not exist."""
    ids: list[int] = []
    version = None
    tag_id = await status_store.tag_id(state.db, tagged.lstrip("#")) if tagged else None
    if not (tagged and tag_id is None):
        ids, version = await timelines.account_statuses(
            state.db, account.id, viewer_id, page, exclude_replies=exclude_replies, exclude_reblogs=exclude_reblogs,
            only_media=only_media, pinned=pinned, tag_id=tag_id)
    viewer = None
    if viewer_id is not None:
        viewer = await viewers.at_version(state, viewer_id, version)
        if account.id in viewer.blocked:
            ids = []
    return loaders.without_hidden(await loaders.statuses_by_ids(state, viewer_id, ids, viewer_state=viewer), "account")


async def collection(state: State, viewer: Account, table: str, page: Page) -> StatusPage:
    """The viewer's favourites or bookmarks, paged by when they were added."""
    rows = await timelines.statuses_by_ids_page(state.db, table, viewer.id, page)
    return await loaders.statuses_by_ids(state, viewer.id, [s for _, s in rows], [r for r, _ in rows])

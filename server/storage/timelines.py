"""Timeline queries (they return status ids, newest first) and the materialised home feed."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

from server.ports import Reader, Tx
from server.storage import viewers as viewer_store
from server.storage.dialect import marks
from server.storage.paging import Page, newest_first, window


def _not_hidden(hidden: Collection[int], params: list[Any]) -> str:
    """Exclude posts by, and boosts of posts by, hidden accounts."""
    if not hidden:
        return ""
    ids = list(hidden)
    listed = marks(len(ids))
    params.extend(ids)
    params.extend(ids)
    return (f" AND s.account_id NOT IN ({listed}) AND (s.reblog_of_id IS NULL OR"
            f" (SELECT r.account_id FROM statuses r WHERE r.id = s.reblog_of_id) NOT IN ({listed}))")


async def add_to_feeds(tx: Tx, status_id: int, account_ids: Iterable[int]) -> None:
    await add_feed_rows(tx, [(a, status_id) for a in account_ids])


async def add_feed_rows(tx: Tx, rows: list[tuple[int, int]]) -> None:
    """(reader, status id) rows into home feeds; those there already are left as they are."""
    if rows:
        await tx.executemany("INSERT INTO home_feed (account_id, status_id) VALUES (?, ?) ON CONFLICT DO NOTHING", rows)


async def remove_account_from_feed(tx: Tx, reader_id: int, author_id: int) -> None:
    await tx.execute(
        "DELETE FROM home_feed WHERE account_id = ? AND status_id IN (SELECT id FROM statuses WHERE account_id = ?)",
        (reader_id, author_id))


async def backfill_feed(tx: Tx, reader_id: int, author_id: int, limit: int = 40) -> None:
    """After a follow, bring the author's recent posts the reader may see into the reader's feed."""
    await tx.execute(
        "INSERT INTO home_feed (account_id, status_id) SELECT CAST(? AS BIGINT), id FROM statuses"
        " WHERE account_id = ? AND deleted_at IS NULL AND visibility IN ('public', 'unlisted', 'private')"
        " ORDER BY id DESC LIMIT ? ON CONFLICT DO NOTHING", (reader_id, author_id, limit))


async def home_with_version(db: Reader, viewer_id: int, page: Page, hidden: Collection[int], *,
                            feed_only: bool = False) -> tuple[list[int], int | None]:
    """The viewer's home feed leaving out `hidden` accounts, with the viewer's version read in the same
    query (None when the page is empty): `hidden` is current if that version is the one it was read at.
    `feed_only` with nothing hidden reads the feed's own index and nothing else: deleted statuses leave
    the feed with their deletion, but a suspended account's stay (identity.hide_posts), so the caller
    checks what it loads and reads again without `feed_only` when one of those is on the page."""
    cond, params, order = window("h.status_id", page)
    params = [viewer_id, *params]
    hidden_sql = _not_hidden(hidden, params)
    params.append(page.limit)
    statuses = "" if feed_only and not hidden else " JOIN statuses s ON s.id = h.status_id AND s.deleted_at IS NULL"
    rows = newest_first(await db.fetchall(
        f"SELECT h.status_id, {viewer_store.VERSION_COLUMN} FROM home_feed h{statuses}"
        f" WHERE h.account_id = ?1{cond}{hidden_sql} ORDER BY {order} LIMIT ?",
        params), page)
    return viewer_store.ids_and_version(rows, viewer_id)


# Accounts that moderators silenced (Mastodon's "limit") stay out of the public and tag timelines.
NOT_SILENCED = (" AND NOT EXISTS (SELECT 1 FROM account_moderation am"
                " WHERE am.account_id = s.account_id AND am.silenced_at IS NOT NULL)")


def _public_where(signed_in: bool, local: bool, remote: bool) -> str:
    """What the public and hashtag timelines show of statuses `s`: public originals, not deleted, not by
    silenced accounts; local-only posts only to signed-in users of this instance."""
    where = "s.visibility = 'public' AND s.reblog_of_id IS NULL AND s.deleted_at IS NULL" + NOT_SILENCED
    if not signed_in:
        where += " AND s.local_only = 0"
    if local:
        where += " AND s.local = 1"
    elif remote:
        where += " AND s.local = 0"
    return where


async def public(db: Reader, page: Page, hidden: Collection[int], *, signed_in: bool, local: bool = False,
                 remote: bool = False, only_media: bool = False,
                 viewer_id: int | None = None) -> tuple[list[int], int | None]:
    """The public timeline, with `viewer_id`'s version read in the same query (None when not asked
    for, or when the page is empty). With `only_media` the page is read from the attachments' index,
    newest first: most posts carry none, and walking the statuses for the few that do read the whole
    timeline when there were not enough of them (0.7 s at 1,000,000 statuses)."""
    cond, params, order = window("m.status_id" if only_media else "s.id", page)
    version, params = viewer_store.version_column(viewer_id, params)
    where = _public_where(signed_in, local, remote)
    hidden_sql = _not_hidden(hidden, params)
    params.append(page.limit)
    if only_media:
        sql = (f"SELECT DISTINCT m.status_id{version} FROM media_attachments m JOIN statuses s ON s.id = m.status_id"
               f" WHERE m.status_id IS NOT NULL AND {where}{cond}{hidden_sql} ORDER BY {order} LIMIT ?")
    else:
        sql = f"SELECT s.id{version} FROM statuses s WHERE {where}{cond}{hidden_sql} ORDER BY {order} LIMIT ?"
    rows = newest_first(await db.fetchall(sql, params), page)
    return viewer_store.ids_and_version(rows, viewer_id)


async def tag(db: Reader, tag_ids: Sequence[int], page: Page, hidden: Collection[int], *, signed_in: bool,
              local: bool = False, remote: bool = False, only_media: bool = False,
              all_of: Sequence[int] = (), none_of: Sequence[int] = (),
              viewer_id: int | None = None) -> tuple[list[int], int | None]:
    """Posts carrying any of `tag_ids`, every tag of `all_of` and none of `none_of`, with `viewer_id`'s
    version as `public` reads it (None also when the last tag's query found nothing).
    One query per tag of `tag_ids`, each walking that tag's index for a page, merged here: one query
    over several tags would sort all their posts for every page."""
    where = _public_where(signed_in, local, remote)
    version, params = viewer_store.version_column(viewer_id, [])
    if only_media:
        where += " AND EXISTS (SELECT 1 FROM media_attachments m WHERE m.status_id = s.id)"
    for other in all_of:
        where += " AND EXISTS (SELECT 1 FROM status_tags t WHERE t.status_id = s.id AND t.tag_id = ?)"
        params.append(other)
    if none_of:
        where += (" AND NOT EXISTS (SELECT 1 FROM status_tags t WHERE t.status_id = s.id"
                  f" AND t.tag_id IN ({','.join('?' * len(none_of))}))")
        params.extend(none_of)
    cond, window_params, order = window("st.status_id", page)
    params.extend(window_params)
    hidden_sql = _not_hidden(hidden, params)
    params.append(page.limit)
    # The tag's own parameter comes last, so that the viewer's stays ?1.
    sql = (f"SELECT st.status_id{version} FROM status_tags st JOIN statuses s ON s.id = st.status_id"
           f" WHERE {where}{cond}{hidden_sql} AND st.tag_id = ? ORDER BY {order} LIMIT ?")
    found: set[int] = set()
    read: int | None = None
    for tag_id in dict.fromkeys(tag_ids):
        # The last query's version (versions only grow: it bounds the earlier queries' too), if it has one.
        ids, read = viewer_store.ids_and_version(await db.fetchall(sql, [*params[:-1], tag_id, page.limit]), viewer_id)
        found.update(ids)
    if page.min_id is not None:  # the nearest above min_id, answered newest first
        return sorted(found)[:page.limit][::-1], read
    return sorted(found, reverse=True)[:page.limit], read


def visible_sql(viewer_id: int | None, params: list[Any]) -> str:
    """SQL condition: statuses `s` the viewer may read (the rule of services/visibility.py)."""
    if viewer_id is None:
        return "(s.visibility IN ('public', 'unlisted') AND s.local_only = 0)"
    params.extend([viewer_id, viewer_id, viewer_id])
    return ("(s.visibility IN ('public', 'unlisted') OR s.account_id = ?"
            " OR (s.visibility = 'private' AND EXISTS (SELECT 1 FROM follows f WHERE f.account_id = ?"
            "     AND f.target_account_id = s.account_id))"
            " OR EXISTS (SELECT 1 FROM mentions m WHERE m.status_id = s.id AND m.account_id = ?))")


async def account_statuses(db: Reader, account_id: int, viewer_id: int | None, page: Page, *,
                           exclude_replies: bool, exclude_reblogs: bool, only_media: bool, pinned: bool,
                           tag_id: int | None) -> tuple[list[int], int | None]:
    """The account's statuses the viewer may see, with the viewer's version read in the same query
    (None without a viewer or when the page is empty). Pinned ones (every profile view asks for them)
    and those with media (the profile's media tab) are read from the pins and the attachments, which
    are few, instead of by walking all the account's statuses for them (40 ms at 20,000 statuses)."""
    select = ""
    if pinned:
        column, source = "p.status_id", "pins p JOIN statuses s ON s.id = p.status_id"
        where = ["p.account_id = ?", "s.account_id = p.account_id"]
    elif only_media:
        column, source = "m.status_id", "media_attachments m JOIN statuses s ON s.id = m.status_id"
        where = ["m.account_id = ?", "m.status_id IS NOT NULL", "s.account_id = m.account_id"]
        select = "DISTINCT "  # a post can have several attachments
    else:
        column, source, where = "s.id", "statuses s", ["s.account_id = ?"]
    cond, params, order = window(column, page)
    where.append("s.deleted_at IS NULL")
    pre: list[Any] = [account_id]
    if exclude_replies:
        where.append("(s.in_reply_to_id IS NULL OR s.in_reply_to_account_id = s.account_id)")
    if exclude_reblogs:
        where.append("s.reblog_of_id IS NULL")
    if only_media and pinned:
        where.append("EXISTS (SELECT 1 FROM media_attachments m WHERE m.status_id = s.id)")
    if tag_id is not None:
        where.append("EXISTS (SELECT 1 FROM status_tags st WHERE st.status_id = s.id AND st.tag_id = ?)")
        pre.append(tag_id)
    vis_params: list[Any] = []
    where.append(visible_sql(viewer_id, vis_params))
    version, all_params = viewer_store.version_column(viewer_id, [*pre, *vis_params, *params, page.limit])
    rows = newest_first(await db.fetchall(f"SELECT {select}{column}{version} FROM {source}"
                                          f" WHERE {' AND '.join(where)}{cond} ORDER BY {order} LIMIT ?", all_params), page)
    return viewer_store.ids_and_version(rows, viewer_id)


async def statuses_by_ids_page(db: Reader, table: str, viewer_id: int, page: Page) -> list[tuple[int, int]]:
    """Favourites or bookmarks of the viewer: (row id, status id), newest first."""
    assert table in ("favourites", "bookmarks")
    cond, params, order = window("x.id", page)
    rows = await db.fetchall(
        f"SELECT x.id, x.status_id FROM {table} x JOIN statuses s ON s.id = x.status_id"
        f" WHERE x.account_id = ? AND s.deleted_at IS NULL{cond} ORDER BY {order} LIMIT ?",
        [viewer_id, *params, page.limit])
    return [(r[0], r[1]) for r in newest_first(rows, page)]


async def readers_of(db: Reader, status_id: int) -> list[int]:
    """Accounts whose home feed holds the status."""
    return [r[0] for r in await db.fetchall("SELECT account_id FROM home_feed WHERE status_id = ?", (status_id,))]

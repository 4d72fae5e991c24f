"""Direct-message conversations: one row per local participant, with its read state."""

from __future__ import annotations

from typing import Any

import msgspec

from server.domain.records import Conversation, columns
from server.ids import new_id, now_iso
from server.ports import Reader, Tx
from server.storage.paging import Page, newest_first, window

_COLS = columns(Conversation)
_COLS_C = columns(Conversation, "c")


def _row(row: Any) -> Conversation:
    data = dict(row)
    data["participant_ids"] = msgspec.json.decode(data["participant_ids"])
    return Conversation(**data)


def participants_key(participant_ids: list[int]) -> str:
    return msgspec.json.encode(sorted(set(participant_ids))).decode()


async def add_status(tx: Tx, account_id: int, thread_id: int, participant_ids: list[int], status_id: int,
                     unread: bool) -> int:
    """File a direct status into the account's conversation with these participants; returns its id."""
    key = participants_key(participant_ids)
    now = now_iso()
    await tx.execute(
        f"INSERT INTO conversations ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (account_id, thread_id, participant_ids) DO UPDATE SET"
        f" last_status_id = {tx.dialect.greatest('conversations.last_status_id', 'excluded.last_status_id')},"
        " unread = excluded.unread,"
        " updated_at = excluded.updated_at",
        (new_id(), account_id, thread_id, key, status_id, int(unread), now))
    conversation_id = await tx.fetchval(
        "SELECT id FROM conversations WHERE account_id = ? AND thread_id = ? AND participant_ids = ?",
        (account_id, thread_id, key))
    await tx.execute("INSERT INTO conversation_statuses (conversation_id, status_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                     (conversation_id, status_id))
    return int(conversation_id)


async def get(db: Reader, account_id: int, conversation_id: int) -> Conversation | None:
    row = await db.fetchone(f"SELECT {_COLS} FROM conversations WHERE id = ? AND account_id = ?",
                            (conversation_id, account_id))
    return None if row is None else _row(row)


async def get_many(db: Reader, conversation_ids: list[int]) -> list[Conversation]:
    if not conversation_ids:
        return []
    rows = await db.fetchall(
        f"SELECT {_COLS} FROM conversations WHERE id IN ({','.join('?' * len(conversation_ids))})", conversation_ids)
    return [_row(r) for r in rows]


async def page_for(db: Reader, account_id: int, page: Page) -> list[Conversation]:
    """Newest activity first; max_id/since_id/min_id refer to the last status id, as in Mastodon."""
    cond, params, order = window("c.last_status_id", page)
    rows = await db.fetchall(
        f"SELECT {_COLS_C} FROM conversations c WHERE c.account_id = ?{cond} ORDER BY {order} LIMIT ?",
        [account_id, *params, page.limit])
    return [_row(r) for r in newest_first(rows, page, key=lambda r: r["last_status_id"])]


async def mark_read(tx: Tx, account_id: int, conversation_id: int) -> bool:
    return bool(await tx.execute("UPDATE conversations SET unread = 0 WHERE id = ? AND account_id = ?",
                                 (conversation_id, account_id)))


async def delete(tx: Tx, account_id: int, conversation_id: int) -> bool:
    return bool(await tx.execute("DELETE FROM conversations WHERE id = ? AND account_id = ?",
                                 (conversation_id, account_id)))


async def forget_status(tx: Tx, status_id: int) -> None:
    """A status was deleted: conversations fall back to their previous message, or go if none is left."""
    rows = await tx.fetchall("SELECT conversation_id FROM conversation_statuses WHERE status_id = ?", (status_id,))
    if not rows:
        return
    # Lock the conversations first: a message filed into one of them meanwhile waits, so the last
    # status computed below is not overwritten by an older one.
    for r in rows:
        await tx.execute(f"SELECT id FROM conversations WHERE id = ?{tx.dialect.for_update}", (r[0],))
    await tx.execute("DELETE FROM conversation_statuses WHERE status_id = ?", (status_id,))
    for r in rows:
        last = await tx.fetchval("SELECT max(status_id) FROM conversation_statuses WHERE conversation_id = ?", (r[0],))
        if last is None:
            await tx.execute("DELETE FROM conversations WHERE id = ?", (r[0],))
        else:
            await tx.execute("UPDATE conversations SET last_status_id = ? WHERE id = ?", (last, r[0]))

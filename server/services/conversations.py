"""Direct-message conversations: filing direct statuses per participant, read state, removal."""

from __future__ import annotations

import msgspec

from server.events import Event
from server.records import Account, Conversation, Status
from server.render import conversations as render
from server.services.errors import NotFound
from server.state import State
from server.storage import accounts, relations
from server.storage import conversations as store

_encoder = msgspec.json.Encoder()


async def status_posted(state: State, status: Status, mentioned: list[int]) -> None:
    """File a new direct status into each local participant's conversation (unread for everyone but
    its author), then publish the updated Conversation on each participant's `direct:<id>` topic.

    The event keeps the documented contract (name "conversation", status_id) and carries the
    Conversation entity rendered for that participant as JSON text in `payload`.
    """
    participants = {status.account_id, *mentioned}
    found = await accounts.get_many(state.db, participants)
    filed: list[tuple[int, int]] = []
    async with state.db.transaction() as tx:
        for account_id in sorted(participants):
            account = found.get(account_id)
            if account is None or not account.local:
                continue
            if account_id != status.account_id and status.account_id in await relations.hidden_account_ids(tx, account_id):
                continue  # they blocked or muted the sender: no conversation, as with notifications
            others = [p for p in participants if p != account_id]
            conversation_id = await store.add_status(tx, account_id, status.thread_id or status.id, others, status.id,
                                                     unread=account_id != status.account_id)
            filed.append((account_id, conversation_id))
    for account_id, conversation_id in filed:
        conversation = await store.get(state.db, account_id, conversation_id)
        if conversation is None:
            continue
        rendered = await render.conversations_json(state, account_id, [conversation])
        if rendered:
            state.bus.publish(Event(topic=f"direct:{account_id}", name="conversation",
                                    payload=_encoder.encode(rendered[0]).decode(), status_id=status.id,
                                    account_id=account_id))


async def own_conversation(state: State, account: Account, conversation_id: int) -> Conversation:
    conversation = await store.get(state.db, account.id, conversation_id)
    if conversation is None:
        raise NotFound()
    return conversation


async def mark_read(state: State, account: Account, conversation_id: int) -> Conversation:
    async with state.db.transaction() as tx:
        if not await store.mark_read(tx, account.id, conversation_id):
            raise NotFound()
    return await own_conversation(state, account, conversation_id)


async def remove(state: State, account: Account, conversation_id: int) -> None:
    """Drop the conversation from the account's list; a later message brings it back."""
    async with state.db.transaction() as tx:
        if not await store.delete(tx, account.id, conversation_id):
            raise NotFound()

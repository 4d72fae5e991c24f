"""Direct-message conversations: filing direct statuses per participant, read state, removal."""

from __future__ import annotations

import msgspec

from server.bus.memory import StreamEvent
from server.domain.enums import Visibility
from server.domain.events import DomainEvent, StatusCreated
from server.domain.paging import Page
from server.domain.records import Account, Conversation, Status
from server.render import mastodon as render
from server.render.bundles import ConversationPage
from server.services import event_reads, loaders
from server.services.errors import NotFound
from server.state import State
from server.storage import accounts, relations
from server.storage import conversations as store

_encoder = msgspec.json.Encoder()


async def on_event(state: State, event_id: int, event: DomainEvent) -> None:
    """Subscriber: a new direct status is filed into its participants' conversations."""
    if isinstance(event, StatusCreated):
        status = await event_reads.created_status(state.db, event.status_id)
        if status is not None and status.deleted_at is None and status.visibility == Visibility.DIRECT:
            await status_posted(state, status, event.mentioned)


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
        rendered = render.conversations_json(state, await loaders.conversation_page(state, account_id, [conversation]))
        if rendered:
            state.bus.publish(StreamEvent(topic=f"direct:{account_id}", name="conversation",
                                    payload=_encoder.encode(rendered[0]).decode(), status_id=status.id,
                                    account_id=account_id))


async def own_conversation(state: State, account: Account, conversation_id: int) -> Conversation:
    conversation = await store.get(state.db, account.id, conversation_id)
    if conversation is None:
        raise NotFound()
    return conversation


async def page_for(state: State, account: Account, page: Page) -> ConversationPage:
    """A page of the account's conversations, newest first (pages are cut by the last status id)."""
    return await loaders.conversation_page(state, account.id, await store.page_for(state.db, account.id, page))


async def mark_read(state: State, account: Account, conversation_id: int) -> ConversationPage:
    async with state.db.transaction() as tx:
        if not await store.mark_read(tx, account.id, conversation_id):
            raise NotFound()
    conversation = await own_conversation(state, account, conversation_id)
    return await loaders.conversation_page(state, account.id, [conversation])


async def remove(state: State, account: Account, conversation_id: int) -> None:
    """Drop the conversation from the account's list; a later message brings it back."""
    async with state.db.transaction() as tx:
        if not await store.delete(tx, account.id, conversation_id):
            raise NotFound()

"""Outbound delivery: the subscriber that turns domain events about local accounts into activities
in the durable delivery queue.

Addressing decides the recipients (followers' shared inboxes, mentioned actors, the author replied
to), the boundary decides what each partner may receive, and there is one queue row per inbox. Ids of
the activities an event produces are derived from the event's id, and each activity is queued once
per event, so a repeated dispatch queues nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from federation import documents as docs
from federation.addressing import address_for_visibility
from federation.models import AS_PUBLIC, host_of
from server.domain.events import (
    AccountDeleted,
    AccountSuspended,
    AccountUnsuspended,
    Blocked,
    DomainEvent,
    Favourited,
    Followed,
    FollowRejected,
    FollowRequested,
    PollVoted,
    ProfileUpdated,
    ReblogCreated,
    StatusCreated,
    StatusDeleted,
    StatusEdited,
    Unblocked,
    Unfavourited,
    Unfollowed,
)
from server.domain.records import Account, Status
from server.render import activitypub as render_ap
from server.services import event_reads
from server.services.federation import groups as group_federation
from server.services.federation import serving
from server.state import State
from server.storage import accounts as account_store
from server.storage import deliveries as delivery_store
from server.storage import polls as poll_store
from server.storage import remote_actors
from server.storage import statuses as status_store

log = logging.getLogger("crosstalk.federation")
_encode = msgspec.json.Encoder().encode


class ActivityPubOutbound:
    def __init__(self, state: State, wake: Callable[[], None] | None = None) -> None:
        self.state = state
        self._wake = wake  # called after enqueueing, to wake the delivery worker
        self._event_id = 0  # the event being handled: every activity queued belongs to it

    async def on_event(self, event_id: int, event: DomainEvent) -> None:
        self._event_id = event_id
        match event:
            case StatusCreated(status_id=status_id):
                status = await self._local_status(status_id, created=True)
                if status is not None and status.deleted_at is None:
                    await self.status_created(status)
            case ReblogCreated(status_id=status_id, original_id=original_id):
                boost = await self._local_status(status_id, created=True)
                original = await status_store.get(self.state.db, original_id)
                if boost is not None and boost.deleted_at is None and original is not None:
                    await self.reblogged(boost, original)
            case StatusEdited(status_id=status_id):
                status = await self._local_status(status_id)
                if status is not None and status.deleted_at is None:
                    await self.status_updated(status)
            case StatusDeleted(status_id=status_id):
                status = await self._local_status(status_id)
                if status is None:
                    return
                if status.reblog_of_id is None:
                    await self.status_deleted(status)
                elif (original := await status_store.get(self.state.db, status.reblog_of_id)) is not None:
                    await self.unreblogged(status, original)
            case Favourited(account_id=account_id, status_id=status_id) | Unfavourited(
                    account_id=account_id, status_id=status_id):
                account = await account_store.get(self.state.db, account_id)
                status = await status_store.get(self.state.db, status_id)
                if account is not None and account.local and status is not None:
                    if isinstance(event, Favourited):
                        await self.favourited(account, status)
                    else:
                        await self.unfavourited(account, status)
            case FollowRequested(follower_id=follower_id, target_id=target_id, uri=uri):
                pair = await self._pair(follower_id, target_id)
                if pair is not None and pair[0].local and not pair[1].local and uri:
                    await self.follow_requested(pair[0], pair[1], uri)
            case Followed(follower_id=follower_id, target_id=target_id, uri=uri):
                pair = await self._pair(follower_id, target_id)
                if pair is not None and not pair[0].local and pair[1].local:
                    await self.follow_accepted(pair[1], pair[0], uri)
            case FollowRejected(follower_id=follower_id, target_id=target_id, uri=uri):
                pair = await self._pair(follower_id, target_id)
                if pair is not None and not pair[0].local and pair[1].local:
                    await self.follow_rejected(pair[1], pair[0], uri)
            case Unfollowed(follower_id=follower_id, target_id=target_id, uri=uri):
                pair = await self._pair(follower_id, target_id)
                if pair is not None and pair[0].local and not pair[1].local:
                    await self.unfollowed(pair[0], pair[1], uri)
            case Blocked(account_id=account_id, target_id=target_id, uri=uri):
                pair = await self._pair(account_id, target_id)
                if pair is not None and pair[0].local and not pair[1].local and uri:
                    await self.blocked(pair[0], pair[1], uri)
            case Unblocked(account_id=account_id, target_id=target_id, uri=uri):
                pair = await self._pair(account_id, target_id)
                if pair is not None and pair[0].local and not pair[1].local:
                    await self.unblocked(pair[0], pair[1], uri)
            case ProfileUpdated(account_id=account_id):
                account = await account_store.get(self.state.db, account_id)
                if account is not None and account.local:
                    await self.profile_updated(account)
            case PollVoted(account_id=account_id, poll_id=poll_id, choices=choices):
                await self._poll_voted(account_id, poll_id, choices)
            case AccountSuspended(account_id=account_id) | AccountUnsuspended(account_id=account_id):
                account = await account_store.get(self.state.db, account_id)
                if account is not None and account.local and account.deleted_at is None:
                    await self.suspension_changed(account, isinstance(event, AccountSuspended))
            case AccountDeleted(account_id=account_id, inboxes=inboxes):
                account = await account_store.get(self.state.db, account_id)
                if account is not None and account.local:
                    await self.account_deleted(account, inboxes)

    async def _local_status(self, status_id: int, created: bool = False) -> Status | None:
        """The status if it is ours; `created`: the one a StatusCreated or ReblogCreated names (read once
        for all the event's subscribers)."""
        read = event_reads.created_status if created else status_store.get
        status = await read(self.state.db, status_id)
        return status if status is not None and status.local else None

    async def _pair(self, first_id: int, second_id: int) -> tuple[Account, Account] | None:
        found = await account_store.get_many(self.state.db, [first_id, second_id])
        if first_id not in found or second_id not in found:
            return None
        return found[first_id], found[second_id]

    async def _poll_voted(self, voter_id: int, poll_id: int, choices: list[int]) -> None:
        poll = await poll_store.get(self.state.db, poll_id)
        voter = await account_store.get(self.state.db, voter_id)
        if poll is None or voter is None or not voter.local:
            return
        status = await status_store.get(self.state.db, poll.status_id)
        if status is not None and not status.local:  # the vote goes to the poll's home server
            await self.poll_voted(voter, status, [poll.options[c] for c in choices if 0 <= c < len(poll.options)])

    # -- plumbing ---------------------------------------------------------------------------------------

    async def _send(self, sender: Account, activity: dict[str, Any], inboxes: Iterable[str]) -> int:
        if not sender.local:
            return 0
        targets = []
        for inbox in dict.fromkeys(inboxes):
            if not inbox:
                continue
            host = host_of(inbox)
            if host and host != self.state.domain:
                targets.append((inbox, host))
        if not targets:
            return 0
        # The organisation's boundary decides who may receive what, possibly in a narrower form.
        plan = await self.state.boundary.plan_delivery(sender, activity, targets)
        count = 0
        async with self.state.db.transaction() as tx:
            if not await delivery_store.claim_event_activity(tx, self._event_id, activity["id"]):
                return 0  # queued by an earlier dispatch of this event
            for variant, group in plan:
                count += await delivery_store.enqueue(tx, variant["id"], sender.id, _encode(variant), group)
        if self._wake is not None:
            self._wake()
        return count

    async def _follower_inboxes(self, account: Account) -> list[str]:
        return [shared or inbox for inbox, shared in await remote_actors.remote_follower_inboxes(self.state.db, account.id)]

    async def _recipients(self, status: Status, author: Account) -> list[str]:
        inboxes = []
        if status.visibility != "direct":
            inboxes.extend(await self._follower_inboxes(author))
        mentioned = await account_store.get_many(self.state.db, await status_store.mentioned_ids(self.state.db, status.id))
        inboxes.extend(a.inbox_url for a in mentioned.values() if not a.local)
        if status.in_reply_to_account_id:
            parent_author = await account_store.get(self.state.db, status.in_reply_to_account_id)
            if parent_author is not None and not parent_author.local and (
                    status.visibility != "direct" or parent_author.id in mentioned):
                inboxes.append(parent_author.inbox_url)
        return inboxes

    async def _author(self, account_id: int) -> Account:
        account = await account_store.get(self.state.db, account_id)
        assert account is not None
        return account

    # -- statuses ----------------------------------------------------------------------------------------

    async def status_created(self, status: Status) -> None:
        if status.local_only:
            return
        author = await self._author(status.account_id)
        recipients = await self._recipients(status, author)
        if not recipients:  # nobody outside: skip rendering the note at all
            return
        note = await serving.note_document(self.state, status)
        await group_federation.address_to_group(self.state, status, note, recipients)
        await self._send(author, render_ap.create_activity(note), recipients)

    async def status_updated(self, status: Status) -> None:
        if status.local_only:
            return
        author = await self._author(status.account_id)
        note = await serving.note_document(self.state, status)
        recipients = await self._recipients(status, author)
        await group_federation.address_to_group(self.state, status, note, recipients)
        await self._send(author, render_ap.create_activity(note, "Update", self._event_id), recipients)

    async def status_deleted(self, status: Status) -> None:
        if status.local_only:
            return
        author = await self._author(status.account_id)
        mentioned = await account_store.get_many(self.state.db, await status_store.mentioned_ids(self.state.db, status.id))
        to, cc = address_for_visibility(status.visibility, author.followers_url, [a.uri for a in mentioned.values()])
        await self._send(author, render_ap.delete_activity(status, author, to, cc), await self._recipients(status, author))

    async def reblogged(self, reblog: Status, original: Status) -> None:
        if original.local_only:  # boosting a local-only post never takes it outside
            return
        booster = await self._author(reblog.account_id)
        original_author = await self._author(original.account_id)
        inboxes = await self._follower_inboxes(booster)
        if not original_author.local:
            inboxes.append(original_author.inbox_url)
        await self._send(booster, render_ap.announce_activity(reblog, booster, original, original_author), inboxes)

    async def unreblogged(self, reblog: Status, original: Status) -> None:
        if original.local_only:
            return
        booster = await self._author(reblog.account_id)
        original_author = await self._author(original.account_id)
        announce = render_ap.announce_activity(reblog, booster, original, original_author)
        inboxes = await self._follower_inboxes(booster)
        if not original_author.local:
            inboxes.append(original_author.inbox_url)
        await self._send(booster, render_ap.undo(booster.uri, announce, str(self._event_id)), inboxes)

    def _like(self, account: Account, status: Status) -> dict[str, Any]:
        return docs.activity("Like", f"{account.uri}#likes/{status.id}", account.uri, status.uri)

    async def favourited(self, account: Account, status: Status) -> None:
        author = await self._author(status.account_id)
        if not author.local:
            await self._send(account, self._like(account, status), [author.inbox_url])

    async def unfavourited(self, account: Account, status: Status) -> None:
        author = await self._author(status.account_id)
        if not author.local:
            await self._send(account, render_ap.undo(account.uri, self._like(account, status), str(self._event_id)),
                             [author.inbox_url])

    # -- relationships ------------------------------------------------------------------------------------

    def _follow(self, follower_uri: str, target_uri: str, follow_uri: str | None) -> dict[str, Any]:
        return docs.activity("Follow", follow_uri or f"{follower_uri}#follows/{host_of(target_uri)}", follower_uri,
                             target_uri)

    async def follow_requested(self, account: Account, target: Account, follow_uri: str) -> None:
        await self._send(account, self._follow(account.uri, target.uri, follow_uri), [target.inbox_url])

    async def unfollowed(self, account: Account, target: Account, follow_uri: str | None) -> None:
        follow = self._follow(account.uri, target.uri, follow_uri)
        await self._send(account, render_ap.undo(account.uri, follow, str(self._event_id)), [target.inbox_url])

    async def follow_accepted(self, account: Account, follower: Account, follow_uri: str | None) -> None:
        follow = self._follow(follower.uri, account.uri, follow_uri)
        activity = docs.activity("Accept", f"{account.uri}#accepts/{self._event_id}", account.uri, follow)
        await self._send(account, activity, [follower.inbox_url])

    async def follow_rejected(self, account: Account, follower: Account, follow_uri: str | None) -> None:
        follow = self._follow(follower.uri, account.uri, follow_uri)
        activity = docs.activity("Reject", f"{account.uri}#rejects/{self._event_id}", account.uri, follow)
        await self._send(account, activity, [follower.inbox_url])

    async def blocked(self, account: Account, target: Account, block_uri: str) -> None:
        await self._send(account, docs.activity("Block", block_uri, account.uri, target.uri), [target.inbox_url])

    async def unblocked(self, account: Account, target: Account, block_uri: str | None) -> None:
        block = docs.activity("Block", block_uri or f"{account.uri}#blocks/{target.id}", account.uri, target.uri)
        await self._send(account, render_ap.undo(account.uri, block, str(self._event_id)), [target.inbox_url])

    async def poll_voted(self, voter: Account, status: Status, options: list[str]) -> None:
        """Mastodon's vote format: one Create(Note) per choice, named after the option, to the author."""
        author = await self._author(status.account_id)
        for number, option in enumerate(options):
            vote_id = f"{voter.uri}#votes/{self._event_id}-{number}"
            note = {"id": vote_id, "type": "Note", "name": option, "attributedTo": voter.uri, "to": [author.uri],
                    "inReplyTo": status.uri}
            activity = docs.activity("Create", f"{vote_id}/activity", voter.uri, note, to=[author.uri])
            await self._send(voter, activity, [author.inbox_url])

    async def profile_updated(self, account: Account) -> None:
        actor = await serving.actor_document(self.state, account)
        activity = docs.activity("Update", f"{account.uri}#updates/{self._event_id}", account.uri, actor,
                                 to=[AS_PUBLIC], cc=[account.followers_url])
        await self._send(account, activity, await self._follower_inboxes(account))

    # -- account lifecycle (as Mastodon: an Update of the actor marked suspended, a Delete of the actor) --

    async def suspension_changed(self, account: Account, suspended: bool) -> None:
        actor = await serving.actor_document(self.state, account)
        if suspended:
            actor["suspended"] = True
        activity = docs.activity("Update", f"{account.uri}#updates/{self._event_id}", account.uri, actor,
                                 to=[AS_PUBLIC], cc=[account.followers_url])
        await self._send(account, activity, await self._follower_inboxes(account))

    async def account_deleted(self, account: Account, inboxes: list[str]) -> None:
        activity = docs.activity("Delete", f"{account.uri}#delete", account.uri, account.uri, to=[AS_PUBLIC])
        await self._send(account, activity, inboxes)

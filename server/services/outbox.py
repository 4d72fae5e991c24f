"""Every local action that others must hear of becomes an activity in the durable delivery queue.

This is the federation side of `server.services.outbound.Outbound`: addressing decides the recipients
(followers' shared inboxes, mentioned actors, the author replied to), one queue row per inbox.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import msgspec

from federation import documents as docs
from federation.addressing import address_for_visibility
from federation.models import AS_PUBLIC, host_of
from server.ids import new_id
from server.records import Account, Status
from server.render import activitypub as render_ap
from server.services.outbound import Outbound
from server.state import State
from server.storage import accounts as account_store
from server.storage import federation as fed_store
from server.storage import statuses as status_store

log = logging.getLogger("crosstalk.federation")
_encode = msgspec.json.Encoder().encode


class ActivityPubOutbound(Outbound):
    def __init__(self, state: State, wake: Any = None) -> None:
        self.state = state
        self._wake = wake  # called after enqueueing, to wake the delivery worker

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
            for variant, group in plan:
                count += await fed_store.enqueue(tx, variant["id"], sender.id, _encode(variant), group)
        if self._wake is not None:
            self._wake()
        return count

    async def _follower_inboxes(self, account: Account) -> list[str]:
        return [shared or inbox for inbox, shared in await fed_store.remote_follower_inboxes(self.state.db, account.id)]

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
        note = await render_ap.note_document(self.state, status)
        await self._send(author, render_ap.create_activity(note), recipients)

    async def status_updated(self, status: Status) -> None:
        if status.local_only:
            return
        author = await self._author(status.account_id)
        note = await render_ap.note_document(self.state, status)
        await self._send(author, render_ap.create_activity(note, "Update", new_id()),
                         await self._recipients(status, author))

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
        await self._send(booster, render_ap.undo(booster.uri, announce, str(new_id())), inboxes)

    def _like(self, account: Account, status: Status) -> dict[str, Any]:
        return docs.activity("Like", f"{account.uri}#likes/{status.id}", account.uri, status.uri)

    async def favourited(self, account: Account, status: Status) -> None:
        author = await self._author(status.account_id)
        if not author.local:
            await self._send(account, self._like(account, status), [author.inbox_url])

    async def unfavourited(self, account: Account, status: Status) -> None:
        author = await self._author(status.account_id)
        if not author.local:
            await self._send(account, render_ap.undo(account.uri, self._like(account, status), str(new_id())),
                             [author.inbox_url])

    # -- relationships ------------------------------------------------------------------------------------

    def _follow(self, follower_uri: str, target_uri: str, follow_uri: str | None) -> dict[str, Any]:
        return docs.activity("Follow", follow_uri or f"{follower_uri}#follows/{host_of(target_uri)}", follower_uri,
                             target_uri)

    async def follow_requested(self, account: Account, target: Account, follow_uri: str) -> None:
        await self._send(account, self._follow(account.uri, target.uri, follow_uri), [target.inbox_url])

    async def unfollowed(self, account: Account, target: Account, follow_uri: str | None) -> None:
        follow = self._follow(account.uri, target.uri, follow_uri)
        await self._send(account, render_ap.undo(account.uri, follow, str(new_id())), [target.inbox_url])

    async def follow_accepted(self, account: Account, follower: Account, follow_uri: str | None) -> None:
        follow = self._follow(follower.uri, account.uri, follow_uri)
        activity = docs.activity("Accept", f"{account.uri}#accepts/{new_id()}", account.uri, follow)
        await self._send(account, activity, [follower.inbox_url])

    async def follow_rejected(self, account: Account, follower: Account, follow_uri: str | None) -> None:
        follow = self._follow(follower.uri, account.uri, follow_uri)
        activity = docs.activity("Reject", f"{account.uri}#rejects/{new_id()}", account.uri, follow)
        await self._send(account, activity, [follower.inbox_url])

    async def blocked(self, account: Account, target: Account, block_uri: str) -> None:
        await self._send(account, docs.activity("Block", block_uri, account.uri, target.uri), [target.inbox_url])

    async def unblocked(self, account: Account, target: Account, block_uri: str | None) -> None:
        block = docs.activity("Block", block_uri or f"{account.uri}#blocks/{target.id}", account.uri, target.uri)
        await self._send(account, render_ap.undo(account.uri, block, str(new_id())), [target.inbox_url])

    async def poll_voted(self, voter: Account, status: Status, options: list[str]) -> None:
        """Mastodon's vote format: one Create(Note) per choice, named after the option, to the author."""
        author = await self._author(status.account_id)
        for option in options:
            vote_id = f"{voter.uri}#votes/{new_id()}"
            note = {"id": vote_id, "type": "Note", "name": option, "attributedTo": voter.uri, "to": [author.uri],
                    "inReplyTo": status.uri}
            activity = docs.activity("Create", f"{vote_id}/activity", voter.uri, note, to=[author.uri])
            await self._send(voter, activity, [author.inbox_url])

    async def profile_updated(self, account: Account) -> None:
        fed = self.state.federation
        actor = render_ap.actor_document(self.state, account, await fed.public_key_pem(account))
        activity = docs.activity("Update", f"{account.uri}#updates/{new_id()}", account.uri, actor,
                                 to=[AS_PUBLIC], cc=[account.followers_url])
        await self._send(account, activity, await self._follower_inboxes(account))

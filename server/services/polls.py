"""Polls: the rules for creating them with a status, voting, and telling people when they end."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import msgspec

from server.domain.events import PollEnded, PollVoted
from server.domain.records import Account, Poll
from server.ids import iso, now_iso
from server.ports import Tx
from server.services.errors import NotFound, Unprocessable
from server.services.visibility import can_see
from server.state import State
from server.storage import polls as store
from server.storage import statuses

log = logging.getLogger("crosstalk.polls")

MAX_OPTIONS = 8
MAX_OPTION_CHARS = 100


class PollSpec(msgspec.Struct, kw_only=True):
    """A poll as a client submits it with a new status."""
    options: list[str]
    expires_in: int
    multiple: bool = False
    hide_totals: bool = False


def validate(state: State, spec: PollSpec) -> None:
    options = [o.strip() for o in spec.options]
    if len(options) < 2:
        raise Unprocessable("Poll must have at least 2 options")
    if len(options) > MAX_OPTIONS:
        raise Unprocessable(f"Poll can have at most {MAX_OPTIONS} options")
    if any(not o for o in options):
        raise Unprocessable("Poll options can't be blank")
    if any(len(o) > MAX_OPTION_CHARS for o in options):
        raise Unprocessable(f"Poll options can be at most {MAX_OPTION_CHARS} characters long")
    if len(set(options)) != len(options):
        raise Unprocessable("Poll options must be different from each other")
    shortest, longest = state.settings.polls.min_expiration, state.settings.polls.max_expiration
    if spec.expires_in < shortest:
        raise Unprocessable(f"Poll duration must be at least {shortest} seconds")
    if spec.expires_in > longest:
        raise Unprocessable(f"Poll duration must be at most {longest} seconds")


async def create_in_tx(tx: Tx, spec: PollSpec, status_id: int, account_id: int) -> int:
    """Store a validated poll for a status being inserted in the same transaction."""
    expires_at = iso(datetime.now(UTC) + timedelta(seconds=spec.expires_in))
    return await store.insert(tx, status_id=status_id, account_id=account_id, options=[o.strip() for o in spec.options],
                              multiple=spec.multiple, hide_totals=spec.hide_totals, expires_at=expires_at)


def expired(poll: Poll, now: str | None = None) -> bool:
    return poll.expires_at is not None and poll.expires_at <= (now or now_iso())


async def visible_poll(state: State, viewer_id: int | None, poll_id: int) -> Poll:
    """The poll if the viewer may see its status; 404 otherwise."""
    poll = await store.get(state.db, poll_id)
    if poll is None:
        raise NotFound()
    status = await statuses.get(state.db, poll.status_id)
    if status is None or not await can_see(state, viewer_id, status):
        raise NotFound()
    return poll


async def own_votes(state: State, viewer_id: int | None, poll: Poll) -> list[int] | None:
    """The viewer's choices in a poll (None when they did not vote, or for nobody in particular)."""
    if viewer_id is None:
        return None
    return (await store.own_votes(state.db, viewer_id, [poll.id])).get(poll.id)


async def vote(state: State, voter: Account, poll_id: int, choices: list[int]) -> Poll:
    poll = await visible_poll(state, voter.id, poll_id)
    if expired(poll):
        raise Unprocessable("The poll has already ended")
    if poll.account_id == voter.id:
        raise Unprocessable("You cannot vote in your own poll")
    if not choices:
        raise Unprocessable("You need to choose at least one option")
    if len(set(choices)) != len(choices):
        raise Unprocessable("Each option can be chosen only once")
    if len(choices) > 1 and not poll.multiple:
        raise Unprocessable("This poll allows only one choice")
    for choice in choices:
        if not 0 <= choice < len(poll.options):
            raise Unprocessable(f"Choice {choice} is not one of the poll's options")
    async with state.db.transaction() as tx:
        await store.lock(tx, poll.id)
        if await store.has_voted(tx, poll.id, voter.id):
            raise Unprocessable("You have already voted on this poll")
        await store.add_votes(tx, poll.id, voter.id, choices)
        await state.events.record(tx, PollVoted(account_id=voter.id, poll_id=poll.id, choices=choices))
    updated = await store.get(state.db, poll.id)
    assert updated is not None
    return updated


async def notify_ended(state: State) -> int:
    """Tell the local voters and the local author of every poll that has ended; each poll once.
    Returns how many polls were handled (the scheduler calls this on every tick)."""
    handled = 0
    for poll in await store.ended_unnotified(state.db, now_iso()):
        async with state.db.transaction() as tx:
            if not await store.claim_ended(tx, poll.id):
                continue
            await state.events.record(tx, PollEnded(poll_id=poll.id))
        handled += 1
    if handled:
        log.info("announced the end of %d poll(s)", handled)
    return handled

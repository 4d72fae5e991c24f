"""The push worker: sends queued Web Push notifications (a Consumer of the job runtime).

Pushes are claimed with an expiry (the next attempt time moved forward), so any number of processes
can run this worker and a push whose process died is taken up again. Each push is checked against the
egress rules when it is sent (the allowed push services may have changed since the subscription was
made), encrypted and signed off the event loop, and posted. A push service that is down or busy (5xx,
408, 429, no answer) gets five retries with growing delays; 404 or 410 means the subscription is gone
and it is deleted; other refusals end that push. Every attempt's outcome is in the boundary log.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from federation.client import EgressDenied
from server.render import mastodon as mastodon_render
from server.render import push as render
from server.services.webpush import MAX_PLAINTEXT, PushRefused, SendOutcome, b64decode, open_token, prepare
from server.state import State
from server.storage import accounts as account_store
from server.storage import notifications as notification_store
from server.storage import push as store
from server.storage import statuses as status_store

log = logging.getLogger("crosstalk.push")
MAX_ATTEMPTS = 6  # the first and five retries, as Mastodon's push queue
BATCH = 100
TOTAL = 16  # pushes in flight at once
CLAIM_SECONDS = 60.0  # longer than one attempt (its HTTP timeout included)
MAX_RETRY_AFTER = 3600.0
# Encryption and signing are a few elliptic-curve operations per push: cheap one by one, but a post
# that notifies many subscribers would hold the event loop, so they run here.
_CRYPTO = ThreadPoolExecutor(max_workers=2, thread_name_prefix="webpush")


def retry_delay(attempts: int, scale: float) -> float:
    """attempts⁴ + 15 seconds (16 s, 31 s, 96 s, 271 s, 640 s), plus up to 50 % jitter."""
    return (attempts ** 4 + 15) * scale * (1 + random.random() * 0.5)


class PushWorker:
    def __init__(self, state: State) -> None:
        self.state = state
        self.scale = float(state.settings.push.retry_scale)
        self._wake = asyncio.Event()
        self._stopping = False
        self._slots = asyncio.Semaphore(TOTAL)
        self._in_flight: set[tuple[int, int]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        self._wake.set()

    def request_stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def wait_idle(self, grace: float) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace)

    async def run(self) -> None:
        while not self._stopping and not self.state.stopping.is_set():
            try:
                await self._tick()
            except Exception:
                log.exception("push loop error")
                await asyncio.sleep(1)

    async def _tick(self) -> None:
        now = time.time()
        async with self.state.db.transaction() as tx:
            claimed = await store.claim_due(tx, now, now + CLAIM_SECONDS, BATCH)
        for push in claimed:
            key = (push.notification_id, push.subscription_id)
            if self._stopping or key in self._in_flight:
                continue
            await self._slots.acquire()
            self._in_flight.add(key)
            task = asyncio.get_running_loop().create_task(self._attempt(push))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if len(claimed) >= BATCH:
            return
        next_due = await store.next_due_at(self.state.db)
        timeout = 5.0 if next_due is None else max(0.05, min(5.0, next_due - time.time()))
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except TimeoutError:
            pass

    async def _attempt(self, push: store.DuePush) -> None:
        try:
            await self._deliver(push)
        except Exception as exc:
            log.exception("push %s to subscription %s crashed", push.notification_id, push.subscription_id)
            await self._after_crash(push, exc)
        finally:
            self._in_flight.discard((push.notification_id, push.subscription_id))
            self._slots.release()

    async def _deliver(self, push: store.DuePush) -> None:
        state = self.state
        sub = await store.subscription(state.db, push.subscription_id)
        recipient = await store.recipient(state.db, push.subscription_id) if sub is not None else None
        note = (await notification_store.get(state.db, sub.account_id, push.notification_id)
                if sub is not None and recipient is not None and recipient.usable else None)
        sender = await account_store.get(state.db, note.from_account_id) if note is not None else None
        status = await status_store.get(state.db, note.status_id) if note is not None and note.status_id else None
        if sub is None or note is None or sender is None or (status is not None and status.deleted_at is not None):
            await self._finish(push)  # unsubscribed, revoked, dismissed or deleted since: nothing to say
            return
        try:
            host = state.push.check(sub.endpoint)
        except PushRefused as exc:
            state.boundary.record("out", "push", exc.host or "-", "rejected", activity_type=note.type, reason=exc.reason)
            await self._finish(push)
            return
        token = open_token(state.push.vapid.token_key(), sub.id, sub.sealed_token)
        if token is None:
            log.error("push subscription %s: its access token cannot be unsealed; deleting it", sub.id)
            await self._drop_subscription(sub.id)
            return
        icon = mastodon_render.account_json(state, sender)["avatar_static"]
        document = render.payload(note, sender, status, token, recipient.locale if recipient else "", icon)
        prepared = await asyncio.get_running_loop().run_in_executor(_CRYPTO, partial(
            prepare, render.encode_within(document, MAX_PLAINTEXT), b64decode(sub.key_p256dh),
            b64decode(sub.key_auth), sub.standard, state.push.vapid, sub.endpoint, state.push.subject))
        try:
            outcome = await state.push.client.send(sub.endpoint, prepared)
        except EgressDenied as exc:
            state.boundary.record("out", "push", host, "rejected", activity_type=note.type, reason=exc.reason)
            await self._finish(push)
            return
        await self._record(push, sub.id, host, note.type, outcome)

    async def _record(self, push: store.DuePush, subscription_id: int, host: str, kind: str,
                      outcome: SendOutcome) -> None:
        boundary = self.state.boundary
        status = outcome.status
        if status is not None and 200 <= status < 300:
            boundary.record("out", "push", host, "ok", activity_type=kind)
            await self._finish(push)
        elif status in (404, 410):
            boundary.record("out", "push", host, "failed", activity_type=kind,
                            reason=f"push service answered {status}: the subscription is gone, deleted")
            await self._drop_subscription(subscription_id)
        elif status is None or status in (408, 429) or status >= 500:
            error = outcome.error or f"push service answered {status}"
            if push.attempts + 1 >= MAX_ATTEMPTS:
                boundary.record("out", "push", host, "failed", activity_type=kind,
                                reason=f"gave up after {MAX_ATTEMPTS} attempts: {error}")
                await self._finish(push)
                return
            boundary.record("out", "push", host, "retry", activity_type=kind, reason=error)
            delay = retry_delay(push.attempts + 1, self.scale)
            if outcome.retry_after is not None:
                delay = max(delay, min(outcome.retry_after, MAX_RETRY_AFTER))
            async with self.state.db.transaction() as tx:
                await store.retry_later(tx, push, time.time() + delay, error)
        else:
            boundary.record("out", "push", host, "failed", activity_type=kind,
                            reason=f"push service refused the push ({status})")
            await self._finish(push)

    async def _after_crash(self, push: store.DuePush, exc: Exception) -> None:
        """A push that fails in our own code is tried again later, and given up like any other."""
        try:
            async with self.state.db.transaction() as tx:
                if push.attempts + 1 >= MAX_ATTEMPTS:
                    await store.finish(tx, push)
                else:
                    await store.retry_later(tx, push, time.time() + retry_delay(push.attempts + 1, self.scale),
                                            f"{type(exc).__name__}: {exc}")
        except Exception:
            log.exception("could not reschedule push %s", push.notification_id)

    async def _finish(self, push: store.DuePush) -> None:
        async with self.state.db.transaction() as tx:
            await store.finish(tx, push)

    async def _drop_subscription(self, subscription_id: int) -> None:
        async with self.state.db.transaction() as tx:
            await store.delete_subscription(tx, subscription_id)  # its queued pushes go with it

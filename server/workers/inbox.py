"""The inbox worker: applies persisted inbound activities.

Scheduling is per sending host and per actor, never per batch: each actor's activities are applied in
arrival order by one task (so a Create is applied before the Update or Delete that follows it), a host
gets at most a few such tasks at once, and a new activity starts as soon as its actor and host have room.
One slow or hanging server therefore delays only its own activities. Every attempt has a time limit;
an activity stays in the database until it is applied, refused or out of attempts, so nothing accepted
with 202 is lost, not even to a crash or a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import Counter
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import msgspec

from federation.models import host_of
from server.services.federation import inbound, notes
from server.services.federation.client import RemoteError
from server.state import State
from server.storage import deliveries as delivery_store
from server.storage import inbox_queue

log = logging.getLogger("crosstalk.inbox")
T = TypeVar("T")
MAX_ATTEMPTS = 3
ACTIVITY_TIMEOUT = 60.0  # one activity may need several fetches (ancestors), each up to the client's 10 s
ACTORS_PER_HOST = 4  # actors of one host applied at once
ACTORS_AT_ONCE = 128  # over all hosts
ROWS_PER_READ = 50  # an actor task reads its pending activities this many at a time (a run of notes among them is stored at once)
POLL_SECONDS = 5.0
RETRY_SECONDS = 1.0  # before the second attempt; doubled before the third
ACTOR_CLAIM_SECONDS = 3 * ACTIVITY_TIMEOUT  # renewed every third of it while the actor's activities are applied
YIELD_SECONDS = 0.02  # longest wait for the inbox requests in progress before applying the next activity
MAX_DEFER_SECONDS = 5.0  # senders come first for this long at most; then applying takes turns with them


class InboxWorker:
    def __init__(self, state: State) -> None:
        self.state = state
        self._wake = asyncio.Event()
        self._stopping = False
        self._stop = asyncio.Event()
        self.processed = 0
        self._to_persist: list[tuple[str, str, str, str, asyncio.Future[bool]]] = []
        self._persisting = False
        self._seen_hosts: set[str] = set()
        self._seen_reset_at = 0.0
        self._busy: dict[str, asyncio.Task[None]] = {}  # actor URI → the task applying its activities
        self._per_host: Counter[str] = Counter()
        self._receiving = 0  # inbox requests being answered in this process
        self._quiet = asyncio.Event()  # set while none is
        self._quiet.set()
        self._deferring_since: float | None = None  # when the worker started waiting for a quiet moment

    @contextlib.contextmanager
    def receiving(self) -> Iterator[None]:
        """Around the answer to an inbox request: while any is in progress, the activities already
        accepted wait a little (YIELD_SECONDS at most per activity), so that senders are answered
        first: applying can wait, being durable, where a sender waits for its answer and may give up.
        A burst is taken in first; should senders keep the inbox busy without a pause for more than
        MAX_DEFER_SECONDS, applying no longer waits for them, and takes turns with them."""
        self._receiving += 1
        self._quiet.clear()
        try:
            yield
        finally:
            self._receiving -= 1
            if not self._receiving:
                self._quiet.set()

    async def _yield_to_senders(self) -> None:
        if not self._receiving:
            self._deferring_since = None
            return
        now = time.monotonic()
        if self._deferring_since is None:
            self._deferring_since = now
        if now - self._deferring_since > MAX_DEFER_SECONDS:
            await asyncio.sleep(0)  # a turn for the requests ready now, then the next activity
            return
        try:
            await asyncio.wait_for(self._quiet.wait(), YIELD_SECONDS)
            self._deferring_since = None
        except TimeoutError:
            pass

    def wake(self) -> None:
        self._wake.set()

    async def persist(self, activity_id: str, actor_uri: str, body: str, host: str) -> bool:
        """Store an accepted activity; returns False for one seen before. Concurrent callers share one
        transaction (group commit), and each returns only once its row is committed."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._to_persist.append((activity_id, actor_uri, body, host, future))
        if not self._persisting:
            self._persisting = True
            asyncio.get_running_loop().create_task(self._persist_batches())
        return await future

    async def _persist_batches(self) -> None:
        try:
            while self._to_persist:
                batch, self._to_persist = self._to_persist, []
                now = time.monotonic()
                if now > self._seen_reset_at:  # re-announce hosts now and then, to clear their failure state
                    self._seen_hosts.clear()
                    self._seen_reset_at = now + 60
                try:
                    async with self.state.db.transaction() as tx:
                        for host in {item[3] for item in batch} - self._seen_hosts:
                            await delivery_store.host_seen(tx, host)
                        results = await inbox_queue.record_inbox_many(tx, [item[:4] for item in batch])
                except Exception as exc:
                    for *_rest, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                self._seen_hosts.update(item[3] for item in batch)
                for (*_rest, future), fresh in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(fresh)
                # Wake the worker (in this process, or in a worker process) for an actor it is not
                # applying here: this process's task for an actor reads on until none of its
                # activities is left, and its end wakes the worker, so a new activity of it is seen.
                if any(fresh and item[1] not in self._busy for item, fresh in zip(batch, results, strict=True)):
                    self.state.jobs.wake("inbox")
        finally:
            self._persisting = False

    def request_stop(self) -> None:
        """Finish the attempts in hand, take no new work."""
        self._stopping = True
        self._stop.set()
        self._wake.set()

    async def wait_idle(self, grace: float) -> None:
        """Activities in hand are applied inside `run`, which the runtime waits for."""

    async def _pause(self, seconds: float) -> None:
        """Sleep, but no longer than until a stop is requested."""
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            pass

    async def run(self) -> None:
        while not self._stopping and not self.state.stopping.is_set():
            try:
                self._wake.clear()  # before reading: a wake during the read means "read again"
                await self._schedule()
                try:
                    await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
                except TimeoutError:
                    pass
            except Exception:
                log.exception("inbox loop error")
                await asyncio.sleep(1)
        self.request_stop()
        try:  # shutdown: let the attempts in hand end; rows left unfinished stay pending for the next start
            if self._busy:
                await asyncio.wait(list(self._busy.values()), timeout=ACTIVITY_TIMEOUT)
        finally:
            for task in list(self._busy.values()):
                task.cancel()

    async def _schedule(self) -> None:
        """Start a task for every actor with pending activities whose host and the worker have room."""
        room = ACTORS_AT_ONCE - len(self._busy)
        if room <= 0:
            return
        full_hosts = [h for h, n in self._per_host.items() if n >= ACTORS_PER_HOST]
        candidates = await inbox_queue.pending_inbox_actors(self.state.db, full_hosts, list(self._busy), limit=2 * room)
        chosen: list[tuple[str, str]] = []
        per_host = Counter(self._per_host)
        for actor_uri, host in candidates:
            host = host or host_of(actor_uri)  # rows persisted before hosts were recorded
            if len(self._busy) + len(chosen) >= ACTORS_AT_ONCE:
                break
            if actor_uri not in self._busy and per_host[host] < ACTORS_PER_HOST:
                per_host[host] += 1
                chosen.append((actor_uri, host))
        if not chosen:
            return
        # Other processes may apply inbound activities too: start only the actors nobody else holds.
        now = time.time()
        async with self.state.db.transaction() as tx:
            mine = set(await inbox_queue.claim_inbox_actors(tx, [uri for uri, _ in chosen], self.state.jobs.holder,
                                                          now, now + ACTOR_CLAIM_SECONDS))
        for actor_uri, host in chosen:
            if actor_uri not in mine:
                continue
            self._per_host[host] += 1
            task = asyncio.get_running_loop().create_task(self._actor(actor_uri),
                                                           name=f"inbox {actor_uri[:200]}")
            self._busy[actor_uri] = task
            task.add_done_callback(functools.partial(self._done, actor_uri, host))

    def _done(self, actor_uri: str, host: str, _task: asyncio.Task[None]) -> None:
        self._busy.pop(actor_uri, None)
        self._per_host[host] -= 1
        if self._per_host[host] <= 0:
            del self._per_host[host]
        self.wake()  # room for the next actor of this host (or a new activity of this one)

    async def _actor(self, actor_uri: str) -> None:
        """Apply one actor's pending activities in arrival order, until none is left."""
        try:
            await self._apply_all(actor_uri)
        finally:
            async with self.state.db.transaction() as tx:
                await inbox_queue.release_inbox_actor(tx, actor_uri, self.state.jobs.holder)

    async def _apply_all(self, actor_uri: str) -> None:
        renew_at = time.monotonic() + ACTOR_CLAIM_SECONDS / 3
        try:
            while not self._stopping:
                if time.monotonic() > renew_at:  # still working on this actor: keep holding it
                    now = time.time()
                    async with self.state.db.transaction() as tx:
                        await inbox_queue.claim_inbox_actors(tx, [actor_uri], self.state.jobs.holder, now,
                                                           now + ACTOR_CLAIM_SECONDS)
                    renew_at = time.monotonic() + ACTOR_CLAIM_SECONDS / 3
                rows = await inbox_queue.pending_inbox_of(self.state.db, actor_uri, ROWS_PER_READ)
                if not rows:
                    return
                if not await self._apply_rows(rows):
                    return
        except Exception:
            log.exception("inbox actor task %s failed", actor_uri)

    async def _apply_rows(self, rows: list[inbox_queue.PendingActivity]) -> bool:
        """Apply one read of an actor's activities, in order; False when the task should stop.

        A run of Create(Note)s is stored in one transaction: each is checked on its own (and anything
        it needs fetched) first, and the run is stored before any other kind of activity, or a note
        that replies to or repeats one of the run, is applied, so the order of arrival still holds."""
        finished: list[tuple[int, str | None, bool]] = []
        batch: list[tuple[inbox_queue.PendingActivity, notes.NotePlan]] = []
        batch_keys: set[str] = set()
        memo: dict[str, Any] = {}  # what the activities of one batch share (inbound.prepare)
        docs: list[Any] = []
        for row in rows:
            doc: Any = None
            with contextlib.suppress(msgspec.DecodeError):
                doc = msgspec.json.decode(row.body)
            docs.append(doc)
        try:
            await inbound.expect_notes(self.state, docs, memo)
            for row, doc in zip(rows, docs, strict=True):
                if self._stopping:
                    return False
                await self._yield_to_senders()
                keys = inbound.batch_keys(doc)
                if keys is None or keys & batch_keys:
                    await self._store_batch(batch, finished)
                    batch_keys.clear()
                if keys is not None:
                    outcome = await self._attempt(row, inbound.prepare(self.state, doc, memo))
                else:
                    memo.clear()
                    outcome = await self._attempt(row, self._process(row.body))
                if isinstance(outcome, notes.NotePlan):
                    batch.append((row, outcome))
                    batch_keys.update(keys or ())
                    continue
                if outcome[0] is not None and not outcome[1]:
                    # Stays pending: wait a little, then read again (it comes first, keeping the order).
                    await self._store_batch(batch, finished)
                    finished.append((row.id, *outcome))
                    await self._finish(finished)
                    await self._pause(RETRY_SECONDS * 2 ** row.attempts)
                    return True
                finished.append((row.id, *outcome))
            await self._store_batch(batch, finished)
        finally:
            await self._finish(finished)  # before the next read, which must not see them again
        return True

    async def _store_batch(self, batch: list[tuple[inbox_queue.PendingActivity, notes.NotePlan]],
                           finished: list[tuple[int, str | None, bool]]) -> None:
        """Store the notes prepared so far (one transaction) and note their rows' outcomes."""
        if not batch:
            return
        await self._yield_to_senders()
        plans = [plan for _, plan in batch]
        try:
            async with asyncio.timeout(ACTIVITY_TIMEOUT):
                results: list[Any] = await notes.store_planned_batch(self.state, plans)
        except Exception as exc:  # not even one by one: recorded as failed, as any unexpected error is
            log.exception("inbox: storing %d notes failed", len(batch))
            results = [exc] * len(batch)
        for (row, _plan), result in zip(batch, results, strict=True):
            if isinstance(result, RemoteError):  # as on_create refuses a note it cannot store
                finished.append((row.id, *self._rejected(row, inbound.Rejected(str(result)))))
            elif isinstance(result, Exception):  # as an unexpected error applying one activity
                finished.append((row.id, f"error: {type(result).__name__}: {result}", True))
            else:
                log.debug("inbox %s: applied", row.activity_id)
                finished.append((row.id, None, True))
        batch.clear()

    async def _finish(self, finished: list[tuple[int, str | None, bool]]) -> None:
        """Record the attempts made on one actor's activities, in one transaction (the activities
        themselves were applied each in its own, or a run of notes in one). Should the process die
        before, they are applied again at the next start, as an activity applied just before a crash
        always could be (applying one twice changes nothing)."""
        if not finished:
            return
        async with self.state.db.transaction() as tx:
            for row_id, error, give_up in finished:
                await inbox_queue.finish_inbox(tx, row_id, error, give_up)
        self.processed += len(finished)
        finished.clear()

    async def _process(self, body: str) -> str:
        return await inbound.process(self.state, msgspec.json.decode(body))

    def _rejected(self, row: inbox_queue.PendingActivity, exc: inbound.Rejected) -> tuple[str, bool]:
        self.state.boundary.record("in", "receive", host_of(row.actor_uri), "rejected", actor=row.actor_uri,
                                   activity_type=_type_of(row.body), reason=str(exc)[:300])
        error = f"rejected: {exc}"
        log.info("inbox %s not applied: %s", row.activity_id, error)
        return error, True

    async def _attempt(self, row: inbox_queue.PendingActivity,
                       work: Coroutine[Any, Any, T]) -> T | tuple[str | None, bool]:
        """One attempt at one activity: what `work` returned when it is a note to store, else (the
        error, if it failed; whether to give up on it). The caller records the outcome (`_finish`)."""
        error: str | None = None
        give_up = True
        try:
            async with asyncio.timeout(ACTIVITY_TIMEOUT):
                outcome = await work
            if isinstance(outcome, notes.NotePlan):
                return outcome
            log.debug("inbox %s: %s", row.activity_id, outcome)
        except inbound.Rejected as exc:
            return self._rejected(row, exc)
        except (RemoteError, TimeoutError) as exc:
            error = f"remote: {exc}" if isinstance(exc, RemoteError) else f"timed out after {ACTIVITY_TIMEOUT:.0f} s"
            give_up = row.attempts + 1 >= MAX_ATTEMPTS
        except Exception as exc:
            log.exception("inbox activity %s failed", row.activity_id)
            error = f"error: {type(exc).__name__}: {exc}"
        if error:
            log.info("inbox %s not applied: %s", row.activity_id, error)
        return error, give_up


def _type_of(body: str) -> str | None:
    try:
        kind = msgspec.json.decode(body).get("type")
    except (msgspec.DecodeError, AttributeError):
        return None
    return kind if isinstance(kind, str) else None

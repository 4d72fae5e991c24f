"""The inbox worker: applies persisted inbound activities in arrival order, one actor at a time
(so a Create is applied before the Update or Delete that follows it), several actors at once."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict

import msgspec

from federation.models import host_of
from server.services import inbound
from server.services.remote import RemoteError
from server.state import State
from server.storage import federation as fed_store

log = logging.getLogger("crosstalk.inbox")
MAX_ATTEMPTS = 3


class InboxWorker:
    def __init__(self, state: State) -> None:
        self.state = state
        self._wake = asyncio.Event()
        self._stopping = False
        self.processed = 0
        self._to_persist: list[tuple[str, str, str, str, asyncio.Future[bool]]] = []
        self._persisting = False
        self._seen_hosts: set[str] = set()
        self._seen_reset_at = 0.0

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
                    results = []
                    async with self.state.db.transaction() as tx:
                        for host in {item[3] for item in batch} - self._seen_hosts:
                            await fed_store.host_seen(tx, host)
                        for activity_id, actor_uri, body, _host, _future in batch:
                            results.append(await fed_store.record_inbox(tx, activity_id, actor_uri, body))
                except Exception as exc:
                    for *_rest, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                self._seen_hosts.update(item[3] for item in batch)
                for (*_rest, future), fresh in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(fresh)
                if any(results):
                    self.wake()
        finally:
            self._persisting = False

    def request_stop(self) -> None:
        """Finish the attempt in hand, take no new work."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping and not self.state.stopping.is_set():
            try:
                rows = await fed_store.pending_inbox(self.state.db, 100)
                if rows:
                    by_actor: dict[str, list[object]] = defaultdict(list)
                    for row in rows:
                        by_actor[row["actor_uri"]].append(row)
                    await asyncio.gather(*(self._actor_batch(batch) for batch in by_actor.values()))
                    continue
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), 5.0)
                except TimeoutError:
                    pass
            except Exception:
                log.exception("inbox loop error")
                await asyncio.sleep(1)

    async def _actor_batch(self, rows: list[object]) -> None:
        for row in rows:
            if self._stopping:
                return
            await self._apply(row)

    async def _apply(self, row: object) -> None:
        row_id, activity_id, body, attempts = row["id"], row["activity_id"], row["body"], row["attempts"]  # type: ignore[index]
        error: str | None = None
        give_up = True
        try:
            outcome = await inbound.process(self.state, msgspec.json.decode(body))
            log.debug("inbox %s: %s", activity_id, outcome)
        except inbound.Rejected as exc:
            error = f"rejected: {exc}"
            self.state.boundary.record("in", "receive", host_of(row["actor_uri"]), "rejected",  # type: ignore[index]
                                       actor=row["actor_uri"], activity_type=_type_of(body), reason=str(exc)[:300])  # type: ignore[index]
        except RemoteError as exc:
            error = f"remote: {exc}"
            give_up = attempts + 1 >= MAX_ATTEMPTS
        except Exception as exc:
            log.exception("inbox activity %s failed", activity_id)
            error = f"error: {type(exc).__name__}: {exc}"
        if error:
            log.info("inbox %s not applied: %s", activity_id, error)
        async with self.state.db.transaction() as tx:
            await fed_store.finish_inbox(tx, row_id, error, give_up)
        self.processed += 1


def _type_of(body: str) -> str | None:
    try:
        kind = msgspec.json.decode(body).get("type")
    except (msgspec.DecodeError, AttributeError):
        return None
    return kind if isinstance(kind, str) else None

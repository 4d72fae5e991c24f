"""Signing outgoing deliveries in worker processes, so that the RSA private-key operation (about
half a millisecond each, one per delivery) runs on another core instead of the event loop.

Only the private-key operation leaves the process: the delivery prepares its signing string (or
RFC 9421 signature base) on the event loop, and the pool turns (private PEM, message) into the
signature. Messages are handed over in batches: every signature asked for while the loop runs is
sent to a signing process in one task (one pickling, one pipe write, one wake-up for up to
`BATCH` signatures), and each process has a second batch queued behind the one it signs, so that it
never waits for the loop between two. When every process has its batches and a batch more waits,
the event loop signs too, one signature per turn of the loop: on two CPUs and one signing process
the loop has time to spare (it only sends requests), and the queue would otherwise grow while it idles.
Without a pool every signature is made that way.

The pool is started on the first delivery (an idle instance pays nothing for it), sized by the
setting `federation.signing_processes`: -1 picks one fewer than the CPUs this process may run on
(so none on a single CPU, where a pool would only add the hand-over), 0 signs on the event loop.
Workers are spawned, not forked: the server process has threads (database connections), and a fork
would copy whatever locks they hold. A worker that dies breaks the pool; the next signature starts
a new one and the signatures in hand are made on the event loop instead.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from federation.signatures import rsa_sign, rsa_sign_many

log = logging.getLogger("crosstalk.delivery")
MAX_AUTOMATIC = 8
BATCH = 8  # signatures handed to a signing process at once (at most)
QUEUED_PER_PROCESS = 2  # batches each process holds: the one it signs and the next


def processes_for(setting: int) -> int:
    """How many signing processes `federation.signing_processes` asks for on this machine."""
    if setting >= 0:
        return setting
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(0, min(cpus - 1, MAX_AUTOMATIC))


def _prepare_worker() -> None:
    """Load the signing code once per worker, before its first task."""
    import federation.signatures  # noqa: F401


Waiting = tuple[str, bytes, "asyncio.Future[bytes]"]


class SigningPool:
    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None
        self._waiting: deque[Waiting] = deque()
        self._batches = 0  # batches handed to the pool and not back yet
        self._scheduled = False

    async def sign(self, private_key_pem: str, message: bytes) -> bytes:
        """The RSA signature of `message` (see federation.signatures.rsa_sign), made in the pool when
        there is one, else on the event loop: one signature per turn of the loop, so that whatever
        else is ready (an answer, a database result: a claim holding the database's write lock) waits
        for one signature at most, not for every delivery that became ready at once."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes] = loop.create_future()
        self._waiting.append((private_key_pem, message, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._dispatch)
        return await future

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_prepare_worker)
        return self._pool

    def _take(self) -> list[Waiting]:
        batch: list[Waiting] = []
        while self._waiting and len(batch) < BATCH:
            item = self._waiting.popleft()
            if not item[2].cancelled():
                batch.append(item)
        return batch

    def _dispatch(self) -> None:
        """Hand what waits to the pool, a batch per free place; sign one here when there is no pool, or
        when it is full and a batch more waits; then come back on the loop's next turn."""
        self._scheduled = False
        loop = asyncio.get_running_loop()
        while self.processes > 0 and self._waiting and self._batches < self.processes * QUEUED_PER_PROCESS:
            batch = self._take()
            if not batch:
                break
            pool = self._executor()
            try:
                done = asyncio.wrap_future(pool.submit(rsa_sign_many, [(pem, message) for pem, message, _ in batch]))
            except (BrokenProcessPool, RuntimeError) as exc:  # RuntimeError: a pool shut down meanwhile
                self._broken(pool, exc)
                self._sign_here(batch)
                continue
            self._batches += 1
            done.add_done_callback(lambda result, pool=pool, batch=batch:  # type: ignore[misc]
                                   self._returned(pool, batch, result))
        if self._waiting and (self.processes <= 0 or len(self._waiting) >= BATCH):
            self._sign_here([self._waiting.popleft()])
        if self._waiting and not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._dispatch)

    def _returned(self, pool: ProcessPoolExecutor, batch: list[Waiting], result: asyncio.Future[list[bytes]]) -> None:
        self._batches -= 1
        try:
            signatures = result.result()
        except BrokenProcessPool as exc:
            self._broken(pool, exc)
            self._sign_here(batch)
        except BaseException as exc:  # noqa: BLE001 - handed to the deliveries that asked
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else RuntimeError(repr(exc)))
        else:
            for (_, _, future), signature in zip(batch, signatures, strict=True):
                if not future.done():
                    future.set_result(signature)
        if self._waiting and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._dispatch)

    @staticmethod
    def _sign_here(batch: list[Waiting]) -> None:
        for pem, message, future in batch:
            if future.done():
                continue
            try:
                future.set_result(rsa_sign(pem, message))
            except Exception as exc:  # noqa: BLE001 - handed to the delivery that asked
                future.set_exception(exc)

    def _broken(self, pool: ProcessPoolExecutor, exc: BaseException) -> None:
        """A worker of `pool` died: drop it (unless a new pool replaced it already); the next batch
        starts a new one."""
        if self._pool is pool:
            log.warning("signing pool broken (%s); starting a new one", exc)
            self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the workers (without waiting: they end once their batch in hand is signed); signatures
        still waiting are made here."""
        self._sign_here(list(self._waiting))
        self._waiting.clear()
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

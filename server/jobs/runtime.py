"""One runtime for all background work.

Two kinds of job, declared in server/jobs/catalog.py:
- a Worker drains a durable queue (the event outbox, inbound activities, deliveries) until shutdown;
  its rows are claimed with an expiry, so any number of processes can run it;
- a Periodic job runs every few seconds; with `cluster_once` it first takes a lease in the database
  for one interval, so that it runs once per interval across all processes sharing the database.

The runtime starts what this process runs (all but `jobs.paused`), stops it at shutdown, reports dead
jobs to /readyz and counts runs in the metrics.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from server.bus.memory import StreamEvent
from server.metrics import JOB_LAST_SUCCESS, JOB_RUNS
from server.ports import Bus, Store
from server.storage import jobs as job_store

log = logging.getLogger("crosstalk.jobs")
WAKE_TOPIC = "_wake"


class Worker(Protocol):
    async def run(self) -> None:
        """Work until asked to stop."""

    def wake(self) -> None:
        """New work is queued: look now rather than at the next poll."""

    def request_stop(self) -> None:
        """Finish the attempt in hand, take no new work."""

    async def wait_idle(self, grace: float) -> None:
        """Wait (at most `grace` seconds) for the attempts in hand to finish."""


@dataclass(frozen=True)
class Consumer:
    name: str
    worker: Worker


@dataclass(frozen=True)
class Periodic:
    name: str
    every: float  # seconds between runs
    run: Callable[[], Awaitable[object]]
    cluster_once: bool = True  # False: every process runs it (e.g. renewing its own leases)


Job = Consumer | Periodic


class JobRuntime:
    def __init__(self, db: Store, bus: Bus, holder: str, paused: frozenset[str] = frozenset()) -> None:
        self.db = db
        self.bus = bus
        self.holder = holder  # this process, in leases and claims
        self.paused = paused
        self.jobs: dict[str, Job] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.stopping = asyncio.Event()  # shared with the State: set when the process shuts down
        self.started = False
        self._wake_task: asyncio.Task[None] | None = None

    def declare(self, job: Job) -> None:
        if job.name in self.jobs:
            raise ValueError(f"job {job.name} declared twice")
        self.jobs[job.name] = job
        if self.started:
            self._start(job)

    def runs(self, name: str) -> bool:
        return name in self.jobs and name not in self.paused

    def start(self) -> None:
        self.started = True
        for job in self.jobs.values():
            self._start(job)
        self._wake_task = asyncio.get_running_loop().create_task(self._wake_ups(), name="job wake-ups")

    def wake(self, name: str) -> None:
        """Work for the queue worker `name` was just queued: wake it, in this process or another."""
        self.bus.publish(StreamEvent(topic=WAKE_TOPIC, name=name))

    async def _wake_ups(self) -> None:
        subscription = self.bus.subscribe([WAKE_TOPIC])
        try:
            async for message in subscription:
                job = self.jobs.get(message.name)
                if isinstance(job, Consumer) and message.name in self.tasks:
                    job.worker.wake()
        finally:
            subscription.close()

    def _start(self, job: Job) -> None:
        if job.name in self.paused:
            log.info("job %s is paused in this process (jobs.paused)", job.name)
            return
        coro = job.worker.run() if isinstance(job, Consumer) else self._periodic(job)
        task = asyncio.get_running_loop().create_task(coro, name=f"job:{job.name}")
        task.add_done_callback(self._done)
        self.tasks[job.name] = task

    def _done(self, task: asyncio.Task[None]) -> None:
        if self.stopping.is_set() or task.cancelled():
            return
        log.error("job %s stopped unexpectedly", task.get_name(), exc_info=task.exception())

    def dead(self) -> list[str]:
        return sorted(name for name, task in self.tasks.items() if task.done())

    def alive_count(self) -> int:
        return sum(1 for task in self.tasks.values() if not task.done())

    async def _periodic(self, job: Periodic) -> None:
        while not self.stopping.is_set():
            started = time.time()
            try:
                if not job.cluster_once or await self._lease(job, started):
                    await job.run()
                    JOB_RUNS.labels(job.name, "ok").inc()
                    JOB_LAST_SUCCESS.labels(job.name).set(time.time())
            except Exception:
                JOB_RUNS.labels(job.name, "failed").inc()
                log.exception("job %s failed", job.name)
            try:
                await asyncio.wait_for(self.stopping.wait(), max(0.05, job.every - (time.time() - started)))
            except TimeoutError:
                pass

    async def _lease(self, job: Periodic, now: float) -> bool:
        # Held a little less than an interval, so the holder's next run finds it free or its own.
        async with self.db.transaction() as tx:
            return await job_store.take_lease(tx, job.name, self.holder, now, now + job.every * 0.9)

    async def stop(self, grace: float) -> None:
        """Ask every job to stop, let workers finish the attempt in hand (up to `grace`), then cancel
        what is left. Queued work stays in the database and resumes at the next start."""
        self.stopping.set()
        if self._wake_task is not None:
            self._wake_task.cancel()
        for name, job in self.jobs.items():
            if isinstance(job, Consumer) and name in self.tasks:
                job.worker.request_stop()
        running = [t for t in self.tasks.values() if not t.done()]
        if running:
            _, pending = await asyncio.wait(running, timeout=max(0.0, grace))
            for task in pending:
                log.warning("job %s did not stop in time; cancelling it", task.get_name())
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        for name, job in self.jobs.items():
            if isinstance(job, Consumer) and name in self.tasks:
                await job.worker.wait_idle(max(0.5, grace / 4))

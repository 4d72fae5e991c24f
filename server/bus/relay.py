"""A bus shared by several processes: each message goes to this process's subscribers at once and,
through a broker (Redis pub/sub or NATS), to every other process, which hands it to its own.

The broker is fire-and-forget, like the bus itself: what must not be lost travels as domain events
in the database; the bus only tells live listeners (streams, caches) what happened. While the broker
is away, /readyz says so, one error line says it went away (and one line when it is back), and both
directions are retried with a capped backoff until it is back: messages for other processes wait in
the bounded send queue (the oldest unsent batch is retried, newer ones are dropped once the queue is
full), so a short outage loses fewer stream events and cache invalidations (a process whose own
subscription is not back yet still misses what is sent before it is; a batch that failed half-way
may reach some listeners twice). The bus counts as available only when both the subscription
(listener) and publishing (sender) work, so /readyz turns "ok" only once this process would receive
what the others publish and the others would receive what it publishes.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import msgspec

from server.bus.memory import MemoryBus, StreamEvent

log = logging.getLogger("crosstalk.bus")
SEND_QUEUE = 10000  # messages waiting for the broker before new ones are dropped
RETRY_FIRST, RETRY_MOST = 0.25, 3.0  # seconds between attempts to reach the broker: doubling, capped


def backoff(attempt: int) -> float:
    """Seconds to wait before retry number `attempt` (0-based)."""
    return min(RETRY_MOST, RETRY_FIRST * 2 ** min(attempt, 10))


class Envelope(msgspec.Struct, frozen=True):
    origin: str  # the process that published it: a process skips its own messages
    event: StreamEvent


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Envelope).decode


class BusUnavailable(Exception):
    """The broker cannot be reached at start."""


class RelayedBus(MemoryBus):
    def __init__(self, url: str, channel: str) -> None:
        super().__init__()
        self.url = url
        self.channel = channel  # one per instance (domain): instances may share a broker
        self.origin = uuid.uuid4().hex
        self._outgoing: asyncio.Queue[bytes] = asyncio.Queue(SEND_QUEUE)
        self._tasks: list[asyncio.Task[None]] = []
        self._problems: dict[str, str] = {}  # part ("listen", "send", "connection") -> what is wrong
        self._dropped = 0

    def problem(self) -> str | None:
        return "; ".join(f"{part}: {what}" for part, what in self._problems.items()) or None

    def publish(self, event: StreamEvent) -> None:
        self.deliver(event)
        try:
            self._outgoing.put_nowait(_encode(Envelope(self.origin, event)))
        except asyncio.QueueFull:
            self._dropped += 1
            if self._dropped % 1000 == 1:
                log.warning("bus: the broker is not keeping up; %d message(s) for other processes dropped",
                            self._dropped)

    def received(self, data: bytes) -> None:
        try:
            envelope = _decode(data)
        except msgspec.DecodeError:
            log.warning("bus: an unreadable message on %s was ignored", self.channel)
            return
        if envelope.origin != self.origin:
            # Stamped on receipt: streams compare it with their own monotonic clock.
            self.deliver(msgspec.structs.replace(envelope.event, at=time.monotonic()))

    def unavailable(self, problem: str, part: str = "connection") -> None:
        if not self._problems:
            log.error("bus: lost the connection to %s (%s: %s); streams and caches of other processes "
                      "miss messages until it is back (retrying)", self.url, part, problem)
        self._problems[part] = problem

    def available(self, part: str = "connection") -> None:
        if self._problems.pop(part, None) is not None and not self._problems:
            log.warning("bus: connected to %s again", self.url)

    async def start(self) -> None:
        try:
            await asyncio.wait_for(self.connect(), 10.0)
        except Exception as exc:
            raise BusUnavailable(f"cannot connect to {self.url}: {exc.__class__.__name__}: {exc}") from None
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._send_loop(), name="bus send"),
                       loop.create_task(self.listen(), name="bus listen")]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.disconnect()

    async def _send_loop(self) -> None:
        while True:
            batch = [await self._outgoing.get()]
            while not self._outgoing.empty() and len(batch) < 500:
                batch.append(self._outgoing.get_nowait())
            attempt = 0
            while True:  # the same batch until it is sent: the queue behind it bounds what waits
                try:
                    await self.send(batch)
                    self.available("send")
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.unavailable(f"{exc.__class__.__name__}: {exc}", "send")
                    await asyncio.sleep(backoff(attempt))
                    attempt += 1

    # -- what a broker adapter provides ------------------------------------------------------------

    async def connect(self) -> None:
        raise NotImplementedError

    async def disconnect(self) -> None:
        raise NotImplementedError

    async def send(self, messages: list[bytes]) -> None:
        raise NotImplementedError

    async def listen(self) -> None:
        """Call `received` for every message on the channel until cancelled, reconnecting as needed."""
        raise NotImplementedError

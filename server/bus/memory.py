"""The in-process bus: publish/subscribe by topic within one process.

The interface is deliberately narrow (publish, subscribe, close) so that a Redis or NATS adapter can
replace it when an instance runs as several processes.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import msgspec

# Internal event on `user:<id>` (never sent to clients): the account's blocks or mutes changed, so
# streams drop their cached set of hidden accounts.
RELATIONS_CHANGED = "_relations"


class StreamEvent(msgspec.Struct, frozen=True):
    topic: str  # e.g. "user:123", "public", "public:local", "hashtag:foo", "hashtag:local:foo", "list:9", "direct:123"
    name: str  # Mastodon event name: update, status.update, delete, notification, ...; "_"-prefixed: internal
    payload: Any = None  # already-encoded JSON text, or data the subscriber renders for its viewer
    status_id: int | None = None
    account_id: int | None = None
    # When this process learnt of the event (monotonic clock); an adapter for another transport stamps
    # it on receipt. Streams reuse a rendering of the status only if it started after this moment.
    at: float = msgspec.field(default_factory=time.monotonic)


class EventQueue:
    """A bounded FIFO with one consumer: what asyncio.Queue offers a subscriber (put_nowait, raising
    asyncio.QueueFull when full, and get), at a fraction of its memory. asyncio.Queue carries four
    deques and an Event, about 3.5 kB even when empty; an instance holding 10,000 idle streams holds
    10,000 subscriptions, so this keeps no deque at all while nothing waits in it."""

    __slots__ = ("maxsize", "_items", "_waiter", "_listener")

    def __init__(self, maxsize: int = 0) -> None:
        self.maxsize = maxsize
        self._items: deque[Any] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._listener: Callable[[], None] | None = None

    def notify(self, listener: Callable[[], None] | None) -> None:
        """Call `listener` when an item arrives in the empty queue (see server.ports.EventQueue)."""
        self._listener = listener

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: Any) -> None:
        items = self._items
        if items is None:
            items = self._items = deque()
        elif 0 < self.maxsize <= len(items):
            raise asyncio.QueueFull()
        items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self._listener is not None and len(items) == 1:
            self._listener()

    def get_nowait(self) -> Any:
        items = self._items
        if not items:
            raise asyncio.QueueEmpty()
        item = items.popleft()
        if not items:
            self._items = None
        return item

    async def get(self) -> Any:
        """The next item, waiting for one (one consumer at a time)."""
        while not self._items:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        return self.get_nowait()


class Subscription:
    __slots__ = ("_bus", "topics", "queue")  # one per open stream

    def __init__(self, bus: MemoryBus, topics: Iterable[str], maxsize: int = 1000) -> None:
        self._bus = bus
        self.topics: set[str] = set()
        self.queue = EventQueue(maxsize)
        for topic in topics:
            self.add(topic)

    def add(self, topic: str) -> None:
        if topic not in self.topics:
            self.topics.add(topic)
            self._bus._subscribers[topic].add(self)

    def remove(self, topic: str) -> None:
        self.topics.discard(topic)
        subs = self._bus._subscribers.get(topic)
        if subs is not None:
            subs.discard(self)
            if not subs:
                del self._bus._subscribers[topic]

    def close(self) -> None:
        for topic in list(self.topics):
            self.remove(topic)

    async def __aiter__(self) -> AsyncIterator[StreamEvent]:
        while True:
            yield await self.queue.get()


class MemoryBus:
    """Delivers to this process's subscribers only: the bus of a one-process instance, and the local
    half of the Redis and NATS buses (server/bus/relay.py)."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def problem(self) -> str | None:
        """What is wrong with the connection to other processes, or None."""
        return None

    def subscribe(self, topics: Iterable[str] = ()) -> Subscription:
        return Subscription(self, topics)

    def publish(self, event: StreamEvent) -> None:
        self.deliver(event)

    def deliver(self, event: StreamEvent) -> None:
        """Hand `event` to this process's subscribers of its topic."""
        for sub in tuple(self._subscribers.get(event.topic, ())):
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                pass  # a stalled client loses events rather than stalling everyone

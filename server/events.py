"""In-process publish/subscribe for stream events.

The interface is deliberately narrow (publish, subscribe, close) so that a Redis or NATS adapter can
replace it when an instance runs as several processes.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from typing import Any

import msgspec

# Internal event on `user:<id>` (never sent to clients): the account's blocks or mutes changed, so
# streams drop their cached set of hidden accounts.
RELATIONS_CHANGED = "_relations"


class Event(msgspec.Struct, frozen=True):
    topic: str  # e.g. "user:123", "public", "public:local", "hashtag:foo", "hashtag:local:foo", "list:9", "direct:123"
    name: str  # Mastodon event name: update, status.update, delete, notification, ...; "_"-prefixed: internal
    payload: Any = None  # already-encoded JSON text, or data the subscriber renders for its viewer
    status_id: int | None = None
    account_id: int | None = None
    # When this process learnt of the event (monotonic clock); an adapter for another transport stamps
    # it on receipt. Streams reuse a rendering of the status only if it started after this moment.
    at: float = msgspec.field(default_factory=time.monotonic)


class Subscription:
    def __init__(self, bus: EventBus, topics: Iterable[str], maxsize: int = 1000) -> None:
        self._bus = bus
        self.topics: set[str] = set()
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
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

    async def __aiter__(self) -> AsyncIterator[Event]:
        while True:
            yield await self.queue.get()


class EventBus:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)

    def subscribe(self, topics: Iterable[str] = ()) -> Subscription:
        return Subscription(self, topics)

    def publish(self, event: Event) -> None:
        for sub in tuple(self._subscribers.get(event.topic, ())):
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                pass  # a stalled client loses events rather than stalling everyone

    def connection_count(self) -> int:
        return len({id(s) for subs in self._subscribers.values() for s in subs})

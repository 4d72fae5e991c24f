"""The bus over NATS core publish/subscribe (nats-py), which reconnects by itself."""

from __future__ import annotations

import asyncio
import logging

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg

from server.bus.relay import RelayedBus

log = logging.getLogger("crosstalk.bus")


class NatsBus(RelayedBus):
    def __init__(self, url: str, channel: str) -> None:
        super().__init__(url, channel)
        self._client: Client | None = None

    async def connect(self) -> None:
        async def disconnected() -> None:
            self.unavailable("disconnected")

        async def reconnected() -> None:
            self.available()

        async def error(exc: Exception) -> None:
            # Also called for errors that leave the connection up (a slow consumer, say): those must
            # not mark the bus down, since only `reconnected` would ever mark it up again.
            if self._client is None or not self._client.is_connected:
                self.unavailable(f"{exc.__class__.__name__}: {exc}")
            else:
                log.warning("bus: %s reported %s: %s", self.url, exc.__class__.__name__, exc)

        self._client = await nats.connect(self.url, connect_timeout=5, max_reconnect_attempts=-1,
                                          reconnect_time_wait=1, allow_reconnect=True,
                                          disconnected_cb=disconnected, reconnected_cb=reconnected,
                                          error_cb=error)

    async def disconnect(self) -> None:
        if self._client is not None:
            await self._client.drain()
            self._client = None

    async def send(self, messages: list[bytes]) -> None:
        assert self._client is not None
        for message in messages:
            await self._client.publish(self.channel, message)

    async def listen(self) -> None:
        assert self._client is not None

        async def handle(msg: Msg) -> None:
            self.received(msg.data)

        await self._client.subscribe(self.channel, cb=handle)
        await asyncio.Event().wait()  # nats-py delivers through the callback until cancelled

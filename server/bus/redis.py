"""The bus over Redis pub/sub (redis-py's asyncio client)."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from server.bus.relay import RelayedBus, backoff


class RedisBus(RelayedBus):
    def __init__(self, url: str, channel: str) -> None:
        super().__init__(url, channel)
        self._client: aioredis.Redis | None = None

    async def connect(self) -> None:
        self._client = aioredis.from_url(self.url, socket_connect_timeout=5, health_check_interval=10)
        await self._client.ping()

    async def disconnect(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def send(self, messages: list[bytes]) -> None:
        assert self._client is not None
        async with self._client.pipeline(transaction=False) as pipe:
            for message in messages:
                pipe.publish(self.channel, message)
            await pipe.execute()

    async def listen(self) -> None:
        assert self._client is not None
        attempt = 0
        while True:
            try:
                async with self._client.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    self.available("listen")
                    attempt = 0
                    while True:
                        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
                        if message is not None and message["type"] == "message":
                            self.received(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.unavailable(f"{exc.__class__.__name__}: {exc}", "listen")
                await asyncio.sleep(backoff(attempt))
                attempt += 1

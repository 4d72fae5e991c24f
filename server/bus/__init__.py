"""Messages between the parts of an instance (and, with a broker, between its processes)."""

from __future__ import annotations

from server.bus.memory import MemoryBus
from server.settings import Settings


def make_bus(settings: Settings) -> MemoryBus:
    """The bus the settings ask for: in-process, Redis or NATS."""
    url = settings.bus.url
    channel = f"crosstalk.{settings.domain}"  # the processes of one instance share it
    if url.startswith(("redis://", "rediss://", "unix://")):
        from server.bus.redis import RedisBus
        return RedisBus(url, channel)
    if url.startswith(("nats://", "tls://")):
        from server.bus.nats import NatsBus
        return NatsBus(url, channel.replace(":", "_"))  # NATS subjects: no ':'; '.' separates tokens
    return MemoryBus()

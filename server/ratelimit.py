"""Rate limits: how many requests of a kind a subject (a signed-in account, a client address) may make
per fixed window, with Mastodon's defaults (config/initializers/rack_attack.rb, app/lib/rate_limiter.rb).

The counts live behind the small `RateCounter` port (server/ports.py): in this process's memory, or in
Redis when the bus is Redis (INCRBY and EXPIRE on the window's key), so that the limits hold across all
processes of the instance. With a NATS bus each process counts on its own (NATS has no atomic counter):
N processes then allow up to N times each limit.

Client addresses: the peer's address, or, when the peer is a configured trusted proxy, the address it
reports in X-Forwarded-For (the nearest entry that is not itself a trusted proxy). IPv6 clients are
counted per /64, as Mastodon does, since one host usually holds a whole /64.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from dataclasses import dataclass

from server.domain.addresses import Address, Network, in_networks, parse_address, parse_networks
from server.ports import RateCounter
from server.settings import Settings

log = logging.getLogger("crosstalk.ratelimit")


@dataclass(frozen=True)
class Limit:
    name: str  # part of the counter key, e.g. "api:account"
    limit: int
    period: int  # seconds


@dataclass(frozen=True)
class Usage:
    limit: Limit
    count: int
    reset_at: float  # Unix time the window ends

    @property
    def exceeded(self) -> bool:
        return self.count > self.limit.limit

    @property
    def remaining(self) -> int:
        return max(0, self.limit.limit - self.count)

    def retry_after(self, now: float | None = None) -> int:
        return max(1, math.ceil(self.reset_at - (time.time() if now is None else now)))


class MemoryCounter:
    """Fixed-window counts in this process. Ended windows are dropped when the table fills up; if
    it is still full (a flood of distinct subjects), the windows that end soonest go first."""

    def __init__(self, max_slots: int = 200_000) -> None:
        self._slots: dict[tuple[str, int, int], tuple[int, float]] = {}  # (key, period, window) → (count, ends)
        self._max_slots = max_slots

    async def add(self, key: str, period: int, amount: int, now: float) -> int:
        window = int(now // period)
        slot = (key, period, window)
        found = self._slots.get(slot)
        if found is None and len(self._slots) >= self._max_slots:
            self._make_room(now)
        count = (found[0] if found else 0) + amount
        self._slots[slot] = (count, (window + 1) * period)
        return count

    async def close(self) -> None:
        pass

    def _make_room(self, now: float) -> None:
        live = {slot: entry for slot, entry in self._slots.items() if entry[1] > now}
        if len(live) >= self._max_slots:
            keep = sorted(live.items(), key=lambda item: item[1][1])[len(live) // 2:]
            live = dict(keep)
        self._slots = live


class RedisCounter:
    """Fixed-window counts shared by every process of the instance. If Redis cannot be reached the
    request is counted in this process instead (a limit is a protection, not a reason to refuse
    everyone), with a log line."""

    def __init__(self, url: str, prefix: str) -> None:
        import redis.asyncio as aioredis
        self._client = aioredis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        self._prefix = prefix
        self._fallback = MemoryCounter()
        self._failing = False

    async def add(self, key: str, period: int, amount: int, now: float) -> int:
        window = int(now // period)
        redis_key = f"{self._prefix}:{key}:{period}:{window}"
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.incrby(redis_key, amount)
                pipe.expire(redis_key, period + 1)
                count, _ = await pipe.execute()
        except Exception as exc:
            if not self._failing:
                log.error("rate limits: Redis unreachable (%s); counting in this process until it is back", exc)
                self._failing = True
            return await self._fallback.add(key, period, amount, now)
        if self._failing:
            log.info("rate limits: counting in Redis again")
            self._failing = False
        return int(count)

    async def close(self) -> None:
        await self._client.aclose()


def make_counter(settings: Settings) -> RateCounter:
    """Shared through Redis when the bus is Redis; in this process otherwise."""
    if settings.bus.url.startswith(("redis://", "rediss://", "unix://")):
        return RedisCounter(settings.bus.url, f"crosstalk:{settings.domain}:rate")
    return MemoryCounter()


class RateLimits:
    """The limits this instance applies, read from the settings, counted in a RateCounter."""

    def __init__(self, settings: Settings, counter: RateCounter) -> None:
        s = settings.rate_limit
        self.enabled = s.enabled
        self.counter = counter
        self.trusted_proxies: tuple[Network, ...] = tuple(parse_networks(settings.http.trusted_proxies))
        self.api_account = Limit("api:account", s.account_requests, s.window)
        self.api_address = Limit("api:address", s.address_requests, s.window)
        self.statuses = Limit("statuses", s.statuses_per_account, 3 * 3600)
        self.media = Limit("media", s.media_per_account, 30 * 60)
        self.deletions = Limit("deletions", s.deletions_per_account, 30 * 60)
        self.sign_ups = Limit("sign_ups", s.sign_ups_per_address, 30 * 60)
        self.sign_in_address = Limit("sign_in:address", s.sign_in_failures_per_address, 5 * 60)
        self.sign_in_account = Limit("sign_in:account", s.sign_in_failures_per_account, 3600)
        self.group_joins_account = Limit("group_joins:account", s.group_joins_per_account, 3600)
        self.group_joins_group = Limit("group_joins:group", s.group_joins_per_group, 3600)
        self.group_follows_domain = Limit("group_follows:domain", s.group_follows_per_domain, 3600)
        # Stricter limits on top of the general one, by (method, route), as rack_attack.rb and
        # RateLimiter do: per account for posting, uploads and deletions, per address for sign-ups.
        self.account_routes = {
            ("POST", "/api/v1/statuses"): self.statuses, ("POST", "/api/v1/statuses/{id}/reblog"): self.statuses,
            ("POST", "/api/v1/media"): self.media, ("POST", "/api/v2/media"): self.media,
            ("DELETE", "/api/v1/statuses/{id}"): self.deletions,
            ("POST", "/api/v1/statuses/{id}/unreblog"): self.deletions,
        }
        self.address_routes = {("POST", "/api/v1/accounts"): self.sign_ups}

    async def hit(self, limit: Limit, subject: str, amount: int = 1, now: float | None = None) -> Usage:
        """Count `amount` requests of `subject` against `limit`; returns the window's count so far."""
        now = time.time() if now is None else now
        count = await self.counter.add(f"{limit.name}|{subject}", limit.period, amount, now)
        return Usage(limit, count, (int(now // limit.period) + 1) * limit.period)

    async def undo(self, usage: Usage, subject: str, now: float | None = None) -> None:
        """Take back one counted request (a sign-in that succeeded after all)."""
        await self.hit(usage.limit, subject, -1, now)

    def client_address(self, peer: str | None, forwarded_for: str | None) -> str | None:
        """The client's address: the peer's, unless the peer is a trusted proxy."""
        if not forwarded_for:  # most requests: no parsing (ipaddress costs microseconds)
            return peer
        address = _parse(peer)
        if address is None or not self._trusted(address):
            return peer
        # Right to left: each trusted proxy appended the address it received the request from.
        for entry in reversed([e.strip() for e in forwarded_for.split(",")]):
            hop = _parse(entry)
            if hop is None:
                break  # garbage from further out: the last trusted hop is as far as we can tell
            address = hop
            if not self._trusted(hop):
                break
        return str(address)

    def _trusted(self, address: Address) -> bool:
        return in_networks(address, self.trusted_proxies)


_parse = parse_address


def address_subject(address: str | None) -> str:
    """The subject an address is counted as: IPv4 as is, IPv6 by its /64."""
    parsed = _parse(address)
    if parsed is None:
        return address or "unknown"
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


def rate_limit_headers(limit: int, remaining: int, reset_at: float) -> dict[str, str]:
    """Mastodon's X-RateLimit-* headers (the reset as an ISO 8601 time)."""
    return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(reset_at))}

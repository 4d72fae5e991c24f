"""The outgoing side every federation service shares: one HTTP client (signed fetches, deliveries),
the instance actor's key that signs fetches, and what remote look-ups keep in memory.

One `Remote` per serving process, built by the app assembly (`state.remote`); admin commands run
without it. Its instance key is loaded by `keys.load_instance_actor` before the jobs start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from cachetools import LRUCache, TTLCache

from federation.client import FederationClient, FetchError
from server.domain.records import Account
from server.ports import Store
from server.services.boundary import Boundary, Refused
from server.settings import Settings
from server.storage import deliveries as delivery_store
from server.version import VERSION

Spawn = Callable[[Coroutine[Any, Any, Any], str], Any]


LOOKUP_ENTRIES = 10_000  # per look-up table of a process
BACKFILL_COOLDOWN = 15 * 60.0  # a thread is backfilled at most this often


class RemoteError(Exception):
    """A remote object could not be obtained or is unusable."""


class Remote:
    def __init__(self, settings: Settings, db: Store, boundary: Boundary, spawn: Spawn) -> None:
        self.db = db
        self.boundary = boundary
        self._spawn = spawn
        dev = bool(settings.development)
        self.client = FederationClient(
            user_agent=f"Crosstalk/{VERSION} (+{settings.base_url}/)",
            allowed_private_networks=settings.federation.allowed_private_addresses,
            allow_http=dev, default_scheme=settings.scheme if dev else "https",
            on_signature_format=self._remember_format)
        # The instance actor signs our fetches (keys.load_instance_actor fills these in).
        self.instance_actor_id = 0
        self.instance_key_id = f"{settings.base_url}/actor#main-key"
        self.instance_private_pem = ""
        # In-memory state of the look-ups (keys.py, actors.py, threads.py), bounded: least recently
        # used entries go first. A lock evicted while held costs at most one duplicate fetch.
        self.key_locks: LRUCache[int, asyncio.Lock] = LRUCache(LOOKUP_ENTRIES)
        self.actor_locks: LRUCache[str, asyncio.Lock] = LRUCache(LOOKUP_ENTRIES)
        # thread root id → monotonic time before which we skip (entries outlive it by nothing)
        self.backfilled: TTLCache[int, float] = TTLCache(LOOKUP_ENTRIES, BACKFILL_COOLDOWN)
        self.signing_keys: LRUCache[int, tuple[str, str]] = LRUCache(LOOKUP_ENTRIES)  # account → (key id, PEM)
        # key id → (owner, monotonic expiry); a key rotation reaches other processes within the expiry
        self.key_owners: LRUCache[str, tuple[Account, float]] = LRUCache(LOOKUP_ENTRIES)

    async def close(self) -> None:
        await self.client.close()

    def _remember_format(self, host: str, fmt: str) -> None:
        async def save() -> None:
            async with self.db.transaction() as tx:
                await delivery_store.save_host(tx, host, signature_format=fmt)
        self._spawn(save(), f"remember signature format {host}")

    async def fetch(self, url: str) -> dict[str, Any]:
        """Signed GET as the instance actor, only toward domains the boundary allows."""
        try:
            await self.boundary.check_fetch(url)
        except Refused as exc:
            raise RemoteError(exc.reason) from exc
        try:
            doc = await self.client.fetch(url, key_id=self.instance_key_id, private_key_pem=self.instance_private_pem)
        except FetchError as exc:
            self.boundary.record_fetch(url, str(exc))
            raise RemoteError(str(exc)) from exc
        self.boundary.record_fetch(url)
        return doc

    async def webfinger(self, acct: str) -> str:
        """The actor URL WebFinger gives for `user@domain` (boundary-checked and logged like a fetch)."""
        try:
            url = self.client.webfinger_url(acct)
            await self.boundary.check_fetch(url)
        except (FetchError, Refused) as exc:
            raise RemoteError(exc.reason) from exc
        try:
            actor_url = await self.client.resolve_acct(acct)
        except FetchError as exc:
            self.boundary.record_fetch(url, str(exc))
            raise RemoteError(str(exc)) from exc
        self.boundary.record_fetch(url)
        return actor_url

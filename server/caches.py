"""Bounded in-process caches with names, so that one message can invalidate an entry in every process.

Every cache has an owner (the module that fills it), a bound (entries, or bytes when a size function
is given) and, where entries can go stale, a time to live. `Caches.invalidate` drops entries in this
process; `server/jobs/invalidations.py` carries invalidations to the other processes sharing the
database or the bus.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from time import monotonic
from typing import Any


class LRU:
    """Least recently used first out, on an OrderedDict: a hit moves the key to the end and an eviction
    takes the first, each one C call. (cachetools' LRUCache keeps a second ordered structure in Python,
    a few microseconds a hit, and a timeline page looks up some forty entries; a plain dict, popped
    from the front, leaves deleted slots that every later `next(iter(...))` walks over again: about
    5 µs an eviction in a full cache, against 0.8 µs here.)"""

    def __init__(self, maxsize: float, getsizeof: Callable[[Any], float] | None = None) -> None:
        self._items: OrderedDict[Hashable, tuple[Any, float]] = OrderedDict()
        self._limit = maxsize
        self._used = 0.0
        self._size_of = getsizeof

    def get(self, key: Hashable, default: Any = None) -> Any:
        items = self._items
        found = items.get(key)
        if found is None:
            return default
        items.move_to_end(key)
        return found[0]

    def get_many(self, keys: Iterable[Hashable], into: dict[Any, Any]) -> list[Any]:
        """Put the values kept under `keys` into `into`; answer the keys that have none. (A page looks
        up some forty keys: one call instead of forty `get`s through the wrappers.)"""
        items = self._items
        found_of, move_to_end = items.get, items.move_to_end
        missing = []
        for key in keys:
            found = found_of(key)
            if found is None:
                missing.append(key)
            else:
                move_to_end(key)
                into[key] = found[0]
        return missing

    def __setitem__(self, key: Hashable, value: Any) -> None:
        size = self._size_of(value) if self._size_of is not None else 1
        if size > self._limit:
            raise ValueError("value too large")
        self.pop(key)
        items = self._items
        while items and self._used + size > self._limit:
            self._used -= items.popitem(last=False)[1][1]
        items[key] = (value, size)
        self._used += size

    def pop(self, key: Hashable, default: Any = None) -> Any:
        found = self._items.pop(key, None)
        if found is None:
            return default
        self._used -= found[1]
        return found[0]

    def clear(self) -> None:
        self._items.clear()
        self._used = 0.0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def currsize(self) -> float:
        return self._used


class ExpiringLRU(LRU):
    """An LRU whose entries also end `ttl` seconds after they were put (looked at when read: the bound
    on entries or bytes holds regardless). cachetools' TTLCache costs microseconds a hit in Python
    bookkeeping; a token is looked up on every request."""

    def __init__(self, maxsize: float, ttl: float, getsizeof: Callable[[Any], float] | None = None) -> None:
        super().__init__(maxsize, None if getsizeof is None else lambda kept: getsizeof(kept[0]))
        self._ttl = ttl

    def get(self, key: Hashable, default: Any = None) -> Any:
        kept = super().get(key)
        if kept is None:
            return default
        if kept[1] <= monotonic():
            self.pop(key)
            return default
        return kept[0]

    def get_many(self, keys: Iterable[Hashable], into: dict[Any, Any]) -> list[Any]:
        missing = []
        for key in keys:
            value = self.get(key)
            if value is None:
                missing.append(key)
            else:
                into[key] = value
        return missing

    def __setitem__(self, key: Hashable, value: Any) -> None:
        super().__setitem__(key, (value, monotonic() + self._ttl))

    def pop(self, key: Hashable, default: Any = None) -> Any:
        kept = super().pop(key)
        return default if kept is None else kept[0]


class BoundedCache:
    def __init__(self, name: str, maxsize: int, ttl: float | None = None,
                 getsizeof: Callable[[Any], float] | None = None) -> None:
        self.name = name
        self._data = ExpiringLRU(maxsize, ttl, getsizeof) if ttl is not None else LRU(maxsize, getsizeof)

    def get(self, key: Hashable) -> Any:
        return self._data.get(key)

    def get_many(self, keys: Iterable[Hashable], into: dict[Any, Any]) -> list[Any]:
        """Put the entries kept under `keys` into `into`; answer the keys that have none."""
        return self._data.get_many(keys, into)

    def put(self, key: Hashable, value: Any) -> None:
        try:
            self._data[key] = value
        except ValueError:  # larger than the whole cache: not kept
            pass

    def invalidate(self, key: Hashable | None = None) -> None:
        if key is None:
            self._data.clear()
        else:
            self._data.pop(key, None)

    def __len__(self) -> int:
        return len(self._data)


class Caches:
    """The caches of one process, by name."""

    def __init__(self) -> None:
        self._by_name: dict[str, BoundedCache] = {}

    def add(self, cache: BoundedCache) -> BoundedCache:
        if cache.name in self._by_name:
            raise ValueError(f"cache {cache.name} exists already")
        self._by_name[cache.name] = cache
        return cache

    def get(self, name: str) -> BoundedCache:
        return self._by_name[name]

    def invalidate(self, name: str, key: Hashable | None = None) -> None:
        cache = self._by_name.get(name)
        if cache is not None:
            cache.invalidate(key)

    def names(self) -> list[str]:
        return sorted(self._by_name)


# The caches every process has, with their owners.
TOKENS = "tokens"  # bearer-token hash → (credentials or None); owner: server/services/oauth.py
# status id → what rendering a status needs that is the same for every viewer (its record, its rendered
# parts, poll, reaction counts and the start of its JSON, encoded); account id → the account's record
# and encoded JSON. Owner: server/services/loaders.py. Every change to what a status or an account
# renders as advances its version in the database (triggers, schema 0037), and every such change, or
# the row's removal, writes a row in the invalidation feed (schema 0039, same transaction). Each page
# first reads the feed's new rows (server/jobs/invalidations.py `catch_up`), which drop the entries
# they name, so an entry that is still here is current for every request that began after the change
# was committed, in this process or another sharing the database.
STATUS_RENDERINGS = "status_renderings"
ACCOUNT_RENDERINGS = "account_renderings"
# viewer id → the accounts hidden from the viewer, their active filters and their flags on the statuses
# of their last pages, with the viewer's version (triggers advance it with every change to any of
# that, schema 0038; each page reads it). Owner: server/services/viewers.py.
VIEWER_STATES = "viewer_states"


def entry_size(value: Any) -> int:
    """Bytes a rendering-cache entry holds, as it estimated itself (its `size`)."""
    return int(value.size)


def standard_caches(status_bytes: int = 32 * 1024 * 1024, account_bytes: int = 8 * 1024 * 1024,
                    viewer_bytes: int = 16 * 1024 * 1024) -> Caches:
    caches = Caches()
    # A revoked token stops working at once in every process (the revocation invalidates this
    # cache everywhere); the time to live only bounds how long a missed invalidation could last.
    caches.add(BoundedCache(TOKENS, maxsize=10000, ttl=30.0))
    caches.add(BoundedCache(STATUS_RENDERINGS, maxsize=max(1, status_bytes), getsizeof=entry_size))
    caches.add(BoundedCache(ACCOUNT_RENDERINGS, maxsize=max(1, account_bytes), getsizeof=entry_size))
    caches.add(BoundedCache(VIEWER_STATES, maxsize=max(1, viewer_bytes), getsizeof=entry_size))
    return caches

"""The bounded in-process caches (server/caches.py): least recently used out first, bounded by the sizes
their entries declare, a value larger than the whole cache never kept."""

from __future__ import annotations

from server.caches import BoundedCache


def test_the_least_recently_used_entries_leave_first_within_the_byte_bound():
    cache = BoundedCache("test", maxsize=10, getsizeof=len)
    for key in "abcde":
        cache.put(key, "xx")  # 2 bytes each: full at five
    assert cache.get("a") == "xx"  # a is now the most recently used
    cache.put("f", "xxxx")  # needs 4 bytes: b and c leave, a stays
    assert [k for k in "abcdef" if cache.get(k) is not None] == ["a", "d", "e", "f"]
    cache.put("d", "xxxxxx")  # replacing an entry frees its old size first: 6 + a, e, f... only the room left
    kept = [k for k in "adef" if cache.get(k) is not None]
    assert "d" in kept and sum(len(cache.get(k)) for k in kept) <= 10
    cache.put("huge", "x" * 11)
    assert cache.get("huge") is None and cache.get("d") == "xxxxxx"


def test_a_full_cache_keeps_evicting_in_order_over_many_replacements():
    cache = BoundedCache("test", maxsize=1000)
    for n in range(50_000):
        cache.put(n, n)
    assert len(cache) == 1000
    assert cache.get(48_999) is None and cache.get(49_000) == 49_000  # the newest thousand (49,000 now used)
    cache.put(50_000, 50_000)  # evicts the oldest unused: 49,001, not 49,000
    assert cache.get(49_001) is None and cache.get(49_000) == 49_000 and len(cache) == 1000

"""The bounded in-process caches (server/caches.py): least recently used out first, bounded by the sizes
their entries declare, a value larger than the whole cache never kept."""

from __future__ import annotations

from server import caches
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


def test_get_many_answers_the_missing_keys_and_counts_as_a_use_of_the_found_ones():
    cache = BoundedCache("test", maxsize=3)
    for key in "abc":
        cache.put(key, key.upper())
    found: dict[str, str] = {}
    assert cache.get_many(["a", "x", "b"], found) == ["x"]
    assert found == {"a": "A", "b": "B"}
    cache.put("d", "D")  # c, the one not looked up, leaves first
    assert cache.get("c") is None and [cache.get(k) for k in "abd"] == ["A", "B", "D"]


def test_entries_of_a_cache_with_a_time_to_live_end_after_it(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(caches, "monotonic", lambda: now[0])
    cache = BoundedCache("test", maxsize=2, ttl=30.0)
    cache.put("a", 1)
    now[0] += 20
    cache.put("b", 2)
    assert cache.get("a") == 1 and cache.get_many(["a", "b"], {}) == []
    now[0] += 15  # a was put 35 s ago, b 15 s ago: reading does not extend an entry's life
    found: dict[str, int] = {}
    assert cache.get_many(["a", "b"], found) == ["a"] and found == {"b": 2}
    assert cache.get("a") is None and len(cache) == 1  # the ended entry is gone, not just hidden
    cache.put("c", 3)
    cache.put("d", 4)  # still bounded by entries: b leaves
    assert cache.get("b") is None and cache.get("c") == 3 and cache.get("d") == 4
    now[0] += 31
    assert cache.get("c") is None and cache.get("d") is None

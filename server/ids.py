"""Time-sortable 64-bit ids (Mastodon-style snowflakes) and timestamp formatting."""

from __future__ import annotations

import random
import secrets
import threading
import time
from datetime import UTC, datetime

NODE_BITS = 8  # up to 256 processes minting ids at once, each with its own node number
SEQUENCE_BITS = 8  # 256 ids per millisecond per process before borrowing the next millisecond
MAX_NODE = (1 << NODE_BITS) - 1


class IdGenerator:
    """48 bits of milliseconds, then the node number, then a sequence: strictly increasing within a
    process, and unique across processes as long as no two live processes share a node number (the
    node lease in server/jobs/nodes.py hands them out)."""

    def __init__(self, node: int = 0) -> None:
        self._lock = threading.Lock()
        self._last_ms = 0
        self._sequence = 0
        self.node = node

    def set_node(self, node: int) -> None:
        if not 0 <= node <= MAX_NODE:
            raise ValueError(f"node number {node} out of range 0..{MAX_NODE}")
        self.node = node

    def new(self) -> int:
        with self._lock:
            now = int(time.time() * 1000)
            if now > self._last_ms:
                self._last_ms, self._sequence = now, 0
            else:
                self._sequence += 1
                if self._sequence >> SEQUENCE_BITS:  # this millisecond is used up: borrow the next
                    self._last_ms, self._sequence = self._last_ms + 1, 0
            return (self._last_ms << 16) | (self.node << SEQUENCE_BITS) | self._sequence


# The process's one generator; start-up gives it the node number this process holds. Until it does, a
# random one: processes sharing a database (the server and admin commands) could otherwise mint the
# same id in the same millisecond. SQLite's write lock happened to keep them apart (ids are drawn inside
# the write transaction); PostgreSQL runs their transactions at once.
GENERATOR = IdGenerator(node=secrets.randbelow(MAX_NODE + 1))
_LOW_BITS = random.Random()


def new_id(at_ms: int | None = None) -> int:
    """A new id for now, or for a past moment (at_ms, e.g. a remote post's published date).

    Ids for a past moment get a random low part so backfilled posts sort by their own time; their
    uniqueness is the database's (the caller retries on a clash). Nothing depends on guessing it being
    hard, so it comes from a plain generator (secrets reads the kernel's, a system call per id).
    """
    if at_ms is not None:
        return (at_ms << 16) | _LOW_BITS.getrandbits(16)
    return GENERATOR.new()


def id_for_time(ts: float) -> int:
    """The smallest id of the given Unix time; for range queries by date."""
    return int(ts * 1000) << 16


def now_iso() -> str:
    return iso(datetime.now(UTC))


def iso(dt: datetime) -> str:
    """RFC 3339 with milliseconds and Z, as Mastodon clients expect (formatted field by field: strftime
    takes twice as long, and every stored row has a timestamp or two)."""
    if dt.tzinfo is not UTC:
        dt = dt.astimezone(UTC)
    return (f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
            f".{dt.microsecond // 1000:03d}Z")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


MAX_ID = (1 << 63) - 1  # ids are stored as signed 64-bit integers


def parse_id(text: str) -> int | None:
    """An id as clients send it (a decimal string), or None if it cannot be one of ours. Only ASCII
    digits count: str.isdigit() also accepts "²" and other Unicode digits that int() refuses."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    value = int(text)
    return value if value <= MAX_ID else None

"""Time-sortable 64-bit ids (Mastodon-style snowflakes) and timestamp formatting."""

from __future__ import annotations

import secrets
import threading
import time
from datetime import UTC, datetime

_lock = threading.Lock()
_last = 0


def new_id(at_ms: int | None = None) -> int:
    """48 bits of milliseconds, 16 bits of sequence: strictly increasing within this process.

    Ids made for a past moment (at_ms, e.g. a remote post's published date) get a random low part so
    backfilled posts sort by their own time.
    """
    global _last
    if at_ms is not None:
        return (at_ms << 16) | secrets.randbelow(1 << 16)
    with _lock:
        candidate = int(time.time() * 1000) << 16
        _last = candidate if candidate > _last else _last + 1
        return _last


def id_for_time(ts: float) -> int:
    """The smallest id of the given Unix time; for range queries by date."""
    return int(ts * 1000) << 16


def now_iso() -> str:
    return iso(datetime.now(UTC))


def iso(dt: datetime) -> str:
    """RFC 3339 with milliseconds and Z, as Mastodon clients expect."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))

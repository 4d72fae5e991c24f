"""A page request as clients send it: max_id/since_id/min_id and a limit, newest first. The SQL for it
is in server/storage/paging.py."""

from __future__ import annotations

import msgspec


class Page(msgspec.Struct, frozen=True):
    max_id: int | None = None
    since_id: int | None = None
    min_id: int | None = None
    limit: int = 20

"""What trends are made of (computed by services/trends.py, rendered by render/trends.py)."""

from __future__ import annotations

import msgspec

Usage = list[tuple[str, int, int]]  # (day YYYY-MM-DD, uses, accounts), as render.lists_filters.tag_json reads it


class TagTrend(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    name: str
    uses: int
    accounts: int
    history: Usage
    rejected: bool = False


class LinkTrend(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    url: str
    uses: int
    accounts: int
    history: Usage
    rejected: bool = False


class StatusTrend(msgspec.Struct, frozen=True, kw_only=True):
    status_id: int
    accounts: int
    rejected: bool = False


class Trends(msgspec.Struct, frozen=True, kw_only=True):
    tags: list[TagTrend]
    links: list[LinkTrend]
    statuses: list[StatusTrend]

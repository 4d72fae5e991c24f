"""Closed sets of values, as enums (they compare equal to their stored strings)."""

from __future__ import annotations

from enum import StrEnum


class Visibility(StrEnum):
    PUBLIC = "public"
    UNLISTED = "unlisted"
    PRIVATE = "private"  # followers only
    DIRECT = "direct"  # mentioned accounts only

    @property
    def listed(self) -> bool:
        """Shown to anyone who may look (public and unlisted)."""
        return self in (Visibility.PUBLIC, Visibility.UNLISTED)

    @property
    def to_followers(self) -> bool:
        """Reaches the author's followers' home feeds."""
        return self is not Visibility.DIRECT

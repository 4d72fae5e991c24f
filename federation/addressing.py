"""Mastodon's mapping between post visibility and to/cc addressing (tag_manager.rb,
status_parser.rb), and inbox selection for delivery."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from federation.models import AS_PUBLIC, is_public

__all__ = [
    "VISIBILITIES",
    "Visibility",
    "address_for_visibility",
    "visibility_from_addressing",
    "inboxes_for",
]

Visibility = Literal["public", "unlisted", "private", "direct"]
VISIBILITIES: tuple[Visibility, ...] = ("public", "unlisted", "private", "direct")


def _dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def address_for_visibility(
    visibility: str, followers_url: str, mention_urls: list[str]
) -> tuple[list[str], list[str]]:
    """(to, cc) for a post, exactly as Mastodon addresses it.

    public   → to [Public],    cc [followers, *mentions]
    unlisted → to [followers], cc [Public, *mentions]
    private  → to [followers], cc [*mentions]
    direct   → to [*mentions], cc []
    """
    mentions = _dedupe(mention_urls)
    if visibility == "public":
        return [AS_PUBLIC], _dedupe([followers_url, *mentions])
    if visibility == "unlisted":
        return [followers_url], _dedupe([AS_PUBLIC, *mentions])
    if visibility == "private":
        return [followers_url], [m for m in mentions if m != followers_url]
    if visibility == "direct":
        return mentions, []
    raise ValueError(f"unknown visibility {visibility!r}")


def visibility_from_addressing(to: Iterable[str], cc: Iterable[str], followers_url: str | None) -> Visibility:
    """Classify an incoming post like Mastodon: Public in to → public, Public in cc →
    unlisted, the author's followers collection → private, anything else → direct.

    Mastodon only looks for the followers collection in `to`; we also accept it in
    `cc`, since a followers-addressed post shown as a DM would be the worse mistake.
    """
    to = list(to)
    cc = list(cc)
    if any(is_public(a) for a in to):
        return "public"
    if any(is_public(a) for a in cc):
        return "unlisted"
    if followers_url and (followers_url in to or followers_url in cc):
        return "private"
    return "direct"


def inboxes_for(recipients: Iterable[tuple[str, str | None]]) -> list[str]:
    """Unique delivery targets for (inbox, shared_inbox) pairs, preferring the shared
    inbox so a server with many recipients gets one POST, in first-seen order."""
    return _dedupe(shared or inbox for inbox, shared in recipients if shared or inbox)

"""OAuth scopes as Mastodon defines them: top-level scopes imply their granular children."""

from __future__ import annotations

TOP_LEVEL = {"read", "write", "follow", "push", "profile", "admin:read", "admin:write"}
GRANULAR = {
    "read": {"accounts", "blocks", "bookmarks", "favourites", "filters", "follows", "lists", "mutes",
             "notifications", "search", "statuses"},
    "write": {"accounts", "blocks", "bookmarks", "conversations", "favourites", "filters", "follows", "lists",
              "media", "mutes", "notifications", "reports", "statuses"},
    "admin:read": {"accounts", "reports", "domain_allows", "domain_blocks", "ip_blocks", "email_domain_blocks",
                   "canonical_email_blocks"},
    "admin:write": {"accounts", "reports", "domain_allows", "domain_blocks", "ip_blocks", "email_domain_blocks",
                    "canonical_email_blocks"},
}
# The legacy `follow` scope covers these granular scopes.
FOLLOW_IMPLIES = {"read:blocks", "write:blocks", "read:follows", "write:follows", "read:mutes", "write:mutes"}


def valid_scope(scope: str) -> bool:
    if scope in TOP_LEVEL:
        return True
    parent, _, child = scope.rpartition(":")
    return parent in GRANULAR and child in GRANULAR[parent]


def parse(text: str | None, default: str = "read") -> list[str]:
    """Split a scope string; raises ValueError naming an unknown scope."""
    items = list(dict.fromkeys((text or default).replace("+", " ").split()))
    for item in items:
        if not valid_scope(item):
            raise ValueError(item)
    return items


def grants(granted: set[str] | frozenset[str], required: str) -> bool:
    """Does a token with `granted` scopes satisfy `required` (e.g. "read:statuses")?"""
    if required in granted:
        return True
    parent, _, _child = required.rpartition(":")
    if parent and parent in granted:
        return True
    return "follow" in granted and required in FOLLOW_IMPLIES


def subset(requested: list[str], allowed: list[str]) -> bool:
    """Every requested scope is covered by the app's registered scopes."""
    allowed_set = set(allowed)
    return all(grants(allowed_set, s) or s in allowed_set for s in requested)

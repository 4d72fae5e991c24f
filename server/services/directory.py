"""The people directory: Mastodon's /api/v1/directory with filters by profile field (department, job
title, location), the same filters as `field:value` words in account search, and colleagues (the
people of one's department) for suggestions.

Profile fields are what SCIM provisioning fills in (Department, Title) and what people type on their
profile; a field counts under its name whatever its case and spacing. Department and location match
their whole value, a job title any part of it ("engineer" finds "Senior Engineer")."""

from __future__ import annotations

import re

import msgspec

from server.domain.records import Account
from server.services.errors import Unprocessable
from server.state import State
from server.storage import directory as store
from server.storage import discovery as discovery_store
from server.storage import relations

ORDERS = ("active", "new")
MAX_LIMIT = 80
MAX_OFFSET = 10_000
MAX_VALUE = 200
# filter name → (profile field names it reads, whole value?)
FIELDS: dict[str, tuple[tuple[str, ...], bool]] = {
    "department": (("department",), True),
    "title": (("title", "job title", "role", "position"), False),
    "location": (("location",), True),
}
# `department:engineering`, `title:"design lead"` in an account search
_QUALIFIER = re.compile(r'\b(department|title|location):(?:"([^"]*)"|(\S+))', re.IGNORECASE)


class DirectoryQuery(msgspec.Struct, kw_only=True):
    local: bool = False
    order: str = "active"
    offset: int = 0
    limit: int = 40
    department: str | None = None
    title: str | None = None
    location: str | None = None

    def filters(self) -> dict[str, str]:
        return {name: value for name in FIELDS if (value := getattr(self, name)) is not None and value.strip()}


def _field_filters(filters: dict[str, str]) -> list[tuple[tuple[str, ...], str, bool]]:
    out = []
    for name, value in filters.items():
        if len(value) > MAX_VALUE:
            raise Unprocessable(f"{name} is too long")
        names, exact = FIELDS[name]
        out.append((names, value, exact))
    return out


async def _hidden(state: State, viewer: Account | None) -> set[int]:
    return await relations.hidden_account_ids(state.db, viewer.id) if viewer is not None else set()


async def directory(state: State, viewer: Account | None, query: DirectoryQuery) -> list[Account]:
    """Accounts that chose to be listed, filtered and ordered as asked; accounts the viewer blocked,
    muted or is blocked by are left out."""
    if query.order not in ORDERS:
        raise Unprocessable("order must be active or new")
    if query.offset < 0 or query.offset > MAX_OFFSET:
        raise Unprocessable(f"offset must be between 0 and {MAX_OFFSET}")
    return await store.people(state.db, local=query.local, order=query.order, offset=query.offset,
                              limit=max(1, min(query.limit, MAX_LIMIT)),
                              fields=_field_filters(query.filters()), hidden=await _hidden(state, viewer))


def qualifiers(q: str) -> tuple[str, dict[str, str]] | None:
    """An account search with `department:`, `title:` or `location:` words: (the other words, the
    filters); None for a plain search."""
    found: dict[str, str] = {}
    for m in _QUALIFIER.finditer(q):
        value = (m.group(2) if m.group(2) is not None else m.group(3)).strip()
        if value:
            found[m.group(1).lower()] = value
    if not found:
        return None
    return " ".join(_QUALIFIER.sub(" ", q).split()), found


async def search(state: State, viewer: Account | None, words: str, filters: dict[str, str], *, limit: int,
                 offset: int, following: bool = False) -> list[Account]:
    """Account search narrowed by profile fields: listed accounts with those fields whose username or
    display name contains the other words (if any), the most recently active first."""
    if offset > MAX_OFFSET:
        return []
    return await store.people(state.db, local=False, order="active", offset=offset, limit=limit,
                              fields=_field_filters(filters), hidden=await _hidden(state, viewer), name=words,
                              following_of=viewer.id if following and viewer is not None else None)


async def colleagues(state: State, viewer: Account, limit: int) -> list[Account]:
    """Listed local people of the viewer's department (its Department profile field), the viewer aside."""
    department = await discovery_store.department_of(state.db, viewer.id)
    if not department:
        return []
    found = await store.people(state.db, local=True, order="active", offset=0, limit=limit + 1,
                               fields=_field_filters({"department": department}),
                               hidden=await _hidden(state, viewer))
    return [a for a in found if a.id != viewer.id][:limit]

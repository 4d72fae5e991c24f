"""Versioned schema migrations: one SQL file per version in server/storage/schema, named
NNNN_description.sql. Add a new file for every change; never edit a released one.

Conventions: ids are 64-bit snowflakes (see server.ids); timestamps are RFC 3339 text in UTC with
milliseconds; local accounts have domain = '' so UNIQUE(username, domain) also holds for them.
"""

from __future__ import annotations

import re
from importlib import resources

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


def _load() -> list[tuple[int, str, str]]:
    found = []
    for entry in resources.files("server.storage").joinpath("schema").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2).replace("_", " "), entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a version number: {versions}")
    return found


MIGRATIONS: list[tuple[int, str, str]] = _load()

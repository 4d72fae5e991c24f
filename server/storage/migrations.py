"""Versioned schema migrations, one series per database engine: server/storage/schema/sqlite/ and
server/storage/schema/postgres/, one SQL file per version named NNNN_description.sql. Add a new file
for every change; never edit a released one.

Both series use the same version numbers for the same change, so "schema version 12" means the same
tables whatever the engine. The PostgreSQL series starts with a baseline (version 8) equivalent to
SQLite's 0001-0008; every later change gets a file in each directory.

Conventions: ids are 64-bit snowflakes (see server.ids; BIGINT on PostgreSQL); timestamps are RFC 3339
text in UTC with milliseconds, stored as text by both engines so they compare as strings alike;
flags are integers 0/1 on both; local accounts have domain = '' so UNIQUE(username, domain) also holds
for them.
"""

from __future__ import annotations

import re
from importlib import resources

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
BACKENDS = ("sqlite", "postgres")

Migration = tuple[int, str, str]  # version, name, SQL


def load(backend: str) -> list[Migration]:
    """The migrations of one engine, in version order."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown database engine {backend!r}")
    schema = resources.files("server.storage").joinpath("schema")
    stray = sorted(e.name for e in schema.iterdir() if _NAME.match(e.name))
    if stray:  # a migration outside the engines' folders would silently never run
        raise RuntimeError(f"migrations {', '.join(stray)} belong in schema/sqlite/ and schema/postgres/")
    found = []
    for entry in resources.files("server.storage").joinpath("schema", backend).iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2).replace("_", " "), entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two {backend} migrations share a version number: {versions}")
    return found


def latest(backend: str) -> int:
    return max(v for v, _, _ in load(backend))


MIGRATIONS: list[Migration] = load("sqlite")

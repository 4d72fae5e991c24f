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

# A PostgreSQL migration whose first line is this one runs statement by statement, outside a
# transaction: what must not hold a table's lock for the whole of a long step (CREATE and DROP INDEX
# CONCURRENTLY, which cannot run inside one) while the processes of a rolling update still serve it.
# A failure part-way leaves the steps before it done, so each statement must be safe to run again;
# the statements end with a semicolon at the end of a line, and contain none elsewhere.
OUTSIDE_TRANSACTION = "-- crosstalk: outside a transaction"


def statements(sql: str) -> list[str]:
    """The statements of a migration run outside a transaction, without the comment lines."""
    text = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    found = (s.strip().removesuffix(";").strip() for s in text.split(";\n"))
    return [s for s in found if s]


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

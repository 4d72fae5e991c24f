"""A PostgreSQL database as one COPY file per table, and back (see snapshots.py for why)."""

from __future__ import annotations

import graphlib
from pathlib import Path
from typing import Any

import asyncpg

from server.storage.postgres import PostgresDatabase
from server.storage.snapshots import Progress, SnapshotError

# Filled by the migrations themselves when a backup is loaded.
_NOT_COPIED = {"schema_migrations"}


async def table_order(conn: asyncpg.Connection) -> list[str]:
    """Our tables (in the connection's schema), parents before the tables that refer to them."""
    names = [r[0] for r in await conn.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND c.relkind = 'r' ORDER BY c.relname")]
    order: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter({name: set() for name in names})
    for child, parent in await conn.fetch(
            "SELECT ch.relname, pa.relname FROM pg_constraint co JOIN pg_class ch ON ch.oid = co.conrelid"
            " JOIN pg_class pa ON pa.oid = co.confrelid JOIN pg_namespace n ON n.oid = ch.relnamespace"
            " WHERE co.contype = 'f' AND n.nspname = current_schema() AND ch.oid != pa.oid"):
        order.add(child, parent)
    return list(order.static_order())


async def _tables(conn: asyncpg.Connection) -> list[tuple[str, list[str]]]:
    """Each table in `table_order` with its stored columns (generated ones, such as the search
    document, are computed again on load)."""
    tables = []
    for name in await table_order(conn):
        columns = [r[0] for r in await conn.fetch(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(quote_ident($1)) AND attnum > 0"
            " AND NOT attisdropped AND attgenerated = '' ORDER BY attnum", name)]
        tables.append((name, columns))
    return tables


async def dump(db: PostgresDatabase, directory: Path, progress: Progress) -> tuple[list[dict[str, Any]], int]:
    """Every table into `directory` (which exists), from one snapshot. Returns a manifest entry per
    table (name, file, columns, rows) and the schema version."""
    entries = []
    async with db.connection() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        version = int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))
        tables = [t for t in await _tables(conn) if t[0] not in _NOT_COPIED]
        for done, (name, columns) in enumerate(tables, 1):
            path = directory / f"{name}.copy"
            status = await conn.copy_from_table(name, columns=columns, output=str(path), format="text")
            entries.append({"name": name, "file": path.name, "columns": columns, "rows": _count(status)})
            progress(done, len(tables), "tables")
    return entries, version


async def ensure_empty(db: PostgresDatabase) -> None:
    """Refuse a database that holds anything but an empty Crosstalk schema."""
    async with db.connection() as conn:
        names = [name for name, _ in await _tables(conn)]
        if names and "schema_migrations" not in names:
            raise SnapshotError(f"the {db.describe()} is not empty (it holds other tables); restore only into an "
                                "empty one (create a new database first)")
        for name in names:
            if name not in _NOT_COPIED and await conn.fetchval(f'SELECT EXISTS (SELECT 1 FROM "{name}")'):
                raise SnapshotError(f"the {db.describe()} is not empty (table {name} has rows); restore only into an "
                                    "empty one (create a new database first)")


async def load(db: PostgresDatabase, directory: Path, section: dict[str, Any], schema_version: int,
               progress: Progress) -> None:
    """Recreate the schema at the backup's version and load every table, in one transaction: a
    failure leaves the database as empty as it was."""
    await ensure_empty(db)
    async with db.connection() as conn:
        exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
        current = int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations")) if exists else 0
    if current > schema_version:
        raise SnapshotError(f"the {db.describe()} already has the schema at version {current}, newer than the "
                            f"backup's {schema_version}; restore into a new, empty database")
    await db.migrate(up_to=schema_version)
    wanted = {t["name"]: t for t in section["tables"]}
    async with db.connection() as conn, conn.transaction():
        tables = [name for name, _ in await _tables(conn) if name in wanted]
        unknown = sorted(set(wanted) - set(tables))
        if unknown:
            raise SnapshotError(f"the backup has tables this schema does not: {', '.join(unknown)}")
        for done, name in enumerate(tables, 1):
            entry = wanted[name]
            status = await conn.copy_to_table(name, source=str(directory / entry["file"]), columns=entry["columns"],
                                              format="text")
            if _count(status) != entry["rows"]:
                raise SnapshotError(f"table {name}: loaded {_count(status)} rows, the backup has {entry['rows']}")
            progress(done, len(tables), "tables")


def media_paths(directory: Path, section: dict[str, Any]) -> list[str]:
    """Files the media rows of a dump point at (relative to the media directory)."""
    entry = next((t for t in section["tables"] if t["name"] == "media_attachments"), None)
    if entry is None:
        return []
    wanted = [entry["columns"].index(c) for c in ("file_path", "preview_path")]
    paths: set[str] = set()
    with open(directory / entry["file"], encoding="utf-8") as fh:
        for line in fh:
            fields = line.rstrip("\n").split("\t")
            paths.update(_unescape(fields[i]) for i in wanted if fields[i] not in ("", "\\N"))
    return sorted(paths)


_ESCAPES = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r", "b": "\b", "f": "\f", "v": "\v"}


def _unescape(field: str) -> str:
    """A field of COPY's text format (backslash escapes) as the text it stands for."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        ch = field[i]
        if ch == "\\" and i + 1 < len(field):
            out.append(_ESCAPES.get(field[i + 1], field[i + 1]))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _count(status: str) -> int:
    """The row count in a COPY command tag ('COPY 42')."""
    return int(status.rsplit(" ", 1)[-1])

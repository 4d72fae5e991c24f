"""Moving an instance up: copy its SQLite database into an empty PostgreSQL one (`crosstalk admin
migrate-to-postgres`).

How, and why this way:
- The target gets our own PostgreSQL migrations first (under the usual advisory lock), so it ends up
  exactly as a fresh PostgreSQL instance would: the boundary and audit logs' append-only triggers,
  the generated full-text search column and its GIN index.
- Every table is then read from one SQLite read transaction (one consistent snapshot) and written
  with COPY inside ONE PostgreSQL transaction, parents before the tables that refer to them. Ids are
  kept as they are (they are snowflakes minted by the application, and federation partners know
  posts and actors by URLs built from them); the only database-made counter, an identity column,
  is moved past the largest value SQLite handed out. The search document is computed by PostgreSQL
  as each status row arrives: the search index is rebuilt by the copy itself.
- Before committing, every table's row count in PostgreSQL is compared with SQLite's; any
  difference, any value PostgreSQL refuses, or the process dying half-way rolls the whole copy back,
  leaving the target with the schema and no rows, which a rerun accepts as empty.
- A target holding any row is refused: nothing is ever merged into or overwritten in a live database.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg

from server.storage.migrations import latest
from server.storage.postgres import PostgresDatabase, describe_url
from server.storage.postgres_copy import table_order

BATCH_ROWS = 2000
# SQLite's own bookkeeping and the FTS5 index (PostgreSQL computes its search document itself).
_SQLITE_ONLY_PREFIXES = ("sqlite_", "status_search")
_NOT_COPIED = {"schema_migrations"}
# Columns only PostgreSQL has, filled by their defaults: the transaction that wrote each invalidation
# (schema/postgres/0039; the copied rows get the copy's).
_POSTGRES_ONLY_COLUMNS = {("invalidations", "xid")}

Progress = Callable[[str, int, int], None]  # table, rows done, rows in the table


def describe_target(url: str) -> str:
    """host:port/database of the target, without its credentials."""
    return describe_url(url)


class TransferError(Exception):
    """The copy cannot start or did not complete; the target is left without rows."""


@dataclass
class Column:
    name: str
    type: str  # PostgreSQL's name for the type: bigint, integer, text, double precision, bytea


@dataclass
class Table:
    name: str
    columns: list[Column]
    rows: int = 0


@dataclass
class Report:
    tables: list[Table] = field(default_factory=list)
    schema_version: int = 0
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)


async def migrate_to_postgres(sqlite_path: Path, url: str, progress: Progress, *,
                              allow_running: bool = False) -> Report:
    """Copy the SQLite database at `sqlite_path` into the empty PostgreSQL database at `url`."""
    started = time.monotonic()
    if not await asyncio.to_thread(sqlite_path.exists):
        raise TransferError(f"there is no SQLite database at {sqlite_path}: check data_dir (CROSSTALK_DATA_DIR)")
    target = PostgresDatabase(url, pool_size=2)
    async with _source(sqlite_path) as source:
        version = await _source_version(source)
        if not allow_running:
            await _refuse_running(source)
        await target.connect()
        try:
            await _refuse_non_empty(target)
            await target.migrate()
            async with target.connection() as conn:
                tables = await _target_tables(conn)
                await _check_same_schema(source, tables)
                await source.execute("BEGIN")  # one snapshot of the whole source from here on
                try:
                    async with conn.transaction():
                        for table in tables:
                            await _copy_table(source, conn, table, progress)
                        await _move_identity_counters(source, conn, tables)
                        await _verify_counts(source, conn, tables)
                finally:
                    await source.execute("ROLLBACK")
                # Statistics for the planner, and the visibility map: until a table is vacuumed, an index-only
                # scan (a home timeline's page of ids) reads every row's page as well; that took PostgreSQL
                # 170 us of CPU per page read instead of 90 on the bench's copy. Autovacuum would come to it,
                # but only once some threshold of inserts is seen, and not at all where it is switched off.
                # (A plain VACUUM would visit every table of the database, not ours alone.)
                for table in tables:
                    await conn.execute(f'VACUUM (ANALYZE) "{table.name}"')
        finally:
            await target.close()
    return Report(tables, version, time.monotonic() - started)


@contextlib.asynccontextmanager
async def _source(path: Path) -> AsyncIterator[aiosqlite.Connection]:
    try:
        conn = await aiosqlite.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise TransferError(f"cannot open the SQLite database {path}: {exc}") from None
    # Text that is not valid UTF-8 (never written by Crosstalk, possible in a damaged or hand-edited
    # file) is copied with U+FFFD instead of stopping the copy.
    conn.text_factory = lambda raw: raw.decode("utf-8", "replace")
    try:
        await conn.execute("PRAGMA busy_timeout = 10000")
        yield conn
    finally:
        await conn.close()


async def _source_version(source: aiosqlite.Connection) -> int:
    try:
        rows = await source.execute_fetchall("SELECT coalesce(max(version), 0) FROM schema_migrations")
    except sqlite3.Error as exc:
        raise TransferError(f"the SQLite file is not a Crosstalk database ({exc})") from None
    version = int(list(rows)[0][0])
    wanted = latest("sqlite")
    if version < wanted:
        raise TransferError(f"the SQLite database is at schema version {version}, this Crosstalk expects {wanted}: "
                            "run `crosstalk migrate` (or start the server once) first")
    if version > wanted:
        raise TransferError(f"the SQLite database is at schema version {version}, newer than this Crosstalk "
                            f"({wanted}): use the Crosstalk version that wrote it")
    return version


async def _refuse_running(source: aiosqlite.Connection) -> None:
    """A live server keeps writing after our snapshot, and those writes would be lost."""
    rows = list(await source.execute_fetchall(
        "SELECT node, holder, held_until FROM id_nodes WHERE held_until >= ? ORDER BY held_until DESC",
        (time.time(),)))
    if rows:
        until = time.strftime("%H:%M:%S", time.localtime(max(r[2] for r in rows)))
        raise TransferError(
            f"a Crosstalk process is using this SQLite database ({len(rows)} running, e.g. {rows[0][1]}): stop every "
            "`crosstalk serve`/`worker` first, since what they write after the copy starts would be lost. If they "
            f"were killed rather than stopped, their leases run out at {until}; or pass --allow-running")


async def _refuse_non_empty(target: PostgresDatabase) -> None:
    where = f"the PostgreSQL database {describe_url(target.url)}"
    async with target.connection() as conn:
        names = [r[0] for r in await conn.fetch(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm') ORDER BY c.relname")]
        if names and "schema_migrations" not in names:
            raise TransferError(f"{where} is not empty: it holds tables that are not Crosstalk's "
                                f"({', '.join(names[:5])}{' ...' if len(names) > 5 else ''}). "
                                "Copy only into a new, empty database (CREATE DATABASE ...)")
        for name in names:
            if name not in _NOT_COPIED and await conn.fetchval(f'SELECT EXISTS (SELECT 1 FROM "{name}")'):
                raise TransferError(f"{where} is not empty: table {name} has rows. The copy never merges into or "
                                    "overwrites a database: use a new, empty one (CREATE DATABASE ...)")


async def _target_tables(conn: asyncpg.Connection) -> list[Table]:
    """The target's tables, parents before the tables that refer to them, with their stored columns
    (generated ones, such as the search document, are computed by PostgreSQL)."""
    tables = []
    for name in await table_order(conn):
        if name in _NOT_COPIED:
            continue
        columns = [Column(r[0], r[1]) for r in await conn.fetch(
            "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = to_regclass(quote_ident($1))"
            " AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum", name)
            if (name, r[0]) not in _POSTGRES_ONLY_COLUMNS]
        tables.append(Table(name, columns))
    return tables


async def _check_same_schema(source: aiosqlite.Connection, tables: list[Table]) -> None:
    """Every column of each side has its place on the other: nothing is dropped silently."""
    present = {r[0] for r in await source.execute_fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
               if not r[0].startswith(_SQLITE_ONLY_PREFIXES) and r[0] not in _NOT_COPIED}
    problems = []
    wanted = {t.name: t for t in tables}
    for name in sorted(present - set(wanted)):
        problems.append(f"table {name} exists only in SQLite")
    for name in sorted(set(wanted) - present):
        problems.append(f"table {name} exists only in PostgreSQL")
    for name in sorted(present & set(wanted)):
        have = {r[1] for r in await source.execute_fetchall(f'PRAGMA table_xinfo("{name}")')}
        need = {c.name for c in wanted[name].columns}
        problems += [f"column {name}.{c} exists only in SQLite" for c in sorted(have - need)]
        problems += [f"column {name}.{c} exists only in PostgreSQL" for c in sorted(need - have)]
    if problems:
        raise TransferError("the two schemas do not match (" + "; ".join(problems) + "): this Crosstalk's SQLite "
                            "and PostgreSQL migrations disagree, please report it")


def _converter(table: str, column: Column) -> Callable[[Any], Any]:
    """The SQLite value as what asyncpg's COPY expects for the PostgreSQL column (SQLite's typing is
    loose: an INTEGER column may hold 3.0, a TEXT one bytes)."""
    def refuse(value: Any) -> Any:
        raise TransferError(f"table {table}, column {column.name}: the value {value!r:.60} does not fit "
                            f"PostgreSQL's {column.type}")

    def integer(value: Any) -> Any:
        if value is None or type(value) is int:
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        return refuse(value)

    def real(value: Any) -> Any:
        if value is None or type(value) is float:
            return value
        if isinstance(value, int):
            return float(value)
        try:
            return float(value)
        except (TypeError, ValueError):
            return refuse(value)

    def text(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace("\x00", "\ufffd") if "\x00" in value else value
        if value is None:
            return None
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace").replace("\x00", "\ufffd")
        return str(value)

    def blob(value: Any) -> Any:
        if value is None or isinstance(value, bytes):
            return value
        if isinstance(value, str):
            return value.encode()
        return refuse(value)

    kinds: dict[str, Callable[[Any], Any]] = {"bigint": integer, "integer": integer, "smallint": integer,
                                              "double precision": real, "real": real, "text": text, "bytea": blob}
    if column.type not in kinds:
        raise TransferError(f"table {table}, column {column.name}: no conversion to PostgreSQL's {column.type}")
    return kinds[column.type]


async def _copy_table(source: aiosqlite.Connection, conn: asyncpg.Connection, table: Table,
                      progress: Progress) -> None:
    names = [c.name for c in table.columns]
    converters = [_converter(table.name, c) for c in table.columns]
    total = int(list(await source.execute_fetchall(f'SELECT count(*) FROM "{table.name}"'))[0][0])
    progress(table.name, 0, total)
    quoted = ", ".join(f'"{n}"' for n in names)
    done = 0
    async with source.execute(f'SELECT {quoted} FROM "{table.name}"') as cursor:
        while True:
            batch = await cursor.fetchmany(BATCH_ROWS)
            if not batch:
                break
            records = [tuple(convert(value) for convert, value in zip(converters, row, strict=True)) for row in batch]
            try:
                await conn.copy_records_to_table(table.name, records=records, columns=names)
            except asyncpg.PostgresError as exc:
                raise TransferError(f"table {table.name}: PostgreSQL refused a row: {exc.__class__.__name__}: "
                                    f"{exc}") from None
            done += len(records)
            progress(table.name, done, total)
    table.rows = done


async def _move_identity_counters(source: aiosqlite.Connection, conn: asyncpg.Connection, tables: list[Table]) -> None:
    """Columns PostgreSQL numbers itself continue after the largest number SQLite ever handed out
    (sqlite_sequence remembers those of deleted rows too), so no number is used twice."""
    handed_out: dict[str, int] = {}
    with contextlib.suppress(sqlite3.Error):  # no AUTOINCREMENT table, no sqlite_sequence
        handed_out = {r[0]: int(r[1]) for r in await source.execute_fetchall("SELECT name, seq FROM sqlite_sequence")}
    for table in tables:
        for name, sequence in await conn.fetch(
                "SELECT attname, pg_get_serial_sequence(quote_ident($1), attname) FROM pg_attribute"
                " WHERE attrelid = to_regclass(quote_ident($1)) AND attnum > 0 AND NOT attisdropped"
                " AND (attidentity != '' OR pg_get_serial_sequence(quote_ident($1), attname) IS NOT NULL)",
                table.name):
            largest = max(int(await conn.fetchval(f'SELECT coalesce(max("{name}"), 0) FROM "{table.name}"')),
                          handed_out.get(table.name, 0))
            if largest > 0:
                await conn.execute("SELECT setval($1, $2, true)", sequence, largest)


async def _verify_counts(source: aiosqlite.Connection, conn: asyncpg.Connection, tables: list[Table]) -> None:
    wrong = []
    for table in tables:
        expected = int(list(await source.execute_fetchall(f'SELECT count(*) FROM "{table.name}"'))[0][0])
        copied = int(await conn.fetchval(f'SELECT count(*) FROM "{table.name}"'))
        if expected != copied or copied != table.rows:
            wrong.append(f"{table.name}: SQLite {expected}, PostgreSQL {copied}")
    if wrong:
        raise TransferError("row counts differ after the copy (" + "; ".join(wrong) + "); nothing was committed")

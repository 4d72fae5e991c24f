"""The database part of a backup, per engine: write a consistent snapshot into a backup directory,
check one, and load one into an empty database. server/services/backup.py adds the media files and
the manifest around it, whichever engine this is.

- SQLite: the database file, copied with SQLite's online backup API (maintenance.py).
- PostgreSQL: one file per table in COPY's text format, all read inside one REPEATABLE READ
  transaction, so together they are the database at one instant while writers carry on. This needs
  nothing but the connection the server uses (no pg_dump, whose version must match the server's),
  and restoring recreates the schema with our own migrations, so a backup loads into any PostgreSQL
  the server supports. Operators who prefer pg_dump/pg_basebackup or PITR can use those as well.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from server.settings import Settings
from server.storage import maintenance
from server.storage.migrations import latest

SQLITE_FILE = "crosstalk.sqlite3"
POSTGRES_DIR = "database"

Progress = Callable[[int, int, str], None]  # done, total, unit


class SnapshotError(Exception):
    """The snapshot cannot be taken, is damaged, or cannot go where it was asked to."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Snapshots(Protocol):
    engine: str

    def describe(self) -> str: ...
    def latest_version(self) -> int: ...
    def data_dir_entries(self) -> set[str]:
        """Names in the data directory that belong to the database (left out of the file copy)."""
    def take(self, target: Path, progress: Progress, pages_per_step: int) -> tuple[dict[str, Any], int]:
        """Write the snapshot into `target`; returns the manifest's "database" section and the
        snapshot's schema version."""
    def media_paths(self, target: Path, section: dict[str, Any]) -> list[str]: ...
    def verify(self, source: Path, section: dict[str, Any]) -> None: ...
    def ensure_target_empty(self) -> None: ...
    def restore(self, source: Path, section: dict[str, Any], schema_version: int, progress: Progress) -> None: ...


def for_settings(settings: Settings) -> Snapshots:
    if settings.database.url:
        return PostgresSnapshots(settings.database.url)
    return SqliteSnapshots(settings.db_path)


class SqliteSnapshots:
    engine = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path

    def describe(self) -> str:
        return f"database {self.path}"

    def latest_version(self) -> int:
        return latest("sqlite")

    def data_dir_entries(self) -> set[str]:
        return {self.path.name, *(self.path.name + s for s in maintenance.SIDECAR_SUFFIXES)}

    def take(self, target: Path, progress: Progress, pages_per_step: int) -> tuple[dict[str, Any], int]:
        if not self.path.exists():
            raise SnapshotError(f"there is no database at {self.path}: check data_dir (CROSSTALK_DATA_DIR)")
        partial = target / (SQLITE_FILE + ".partial")
        maintenance.online_backup(self.path, partial, lambda done, total: progress(done, total, "pages"),
                                  pages_per_step=pages_per_step)
        check = maintenance.integrity_check(partial)
        if check != "ok":
            raise SnapshotError(f"the copied database failed its integrity check ({check}); the source may be damaged")
        partial.rename(target / SQLITE_FILE)
        final = target / SQLITE_FILE
        section = {"engine": self.engine, "file": SQLITE_FILE, "bytes": final.stat().st_size, "sha256": sha256(final)}
        return section, maintenance.schema_version(final)

    def media_paths(self, target: Path, section: dict[str, Any]) -> list[str]:
        return maintenance.local_media_paths(target / section["file"])

    def verify(self, source: Path, section: dict[str, Any]) -> None:
        db = source / section["file"]
        if not db.exists() or sha256(db) != section["sha256"]:
            raise SnapshotError(f"{db} is missing or does not match the manifest's checksum")
        check = maintenance.integrity_check(db)
        if check != "ok":
            raise SnapshotError(f"the backup's database failed its integrity check ({check})")

    def ensure_target_empty(self) -> None:
        if self.path.exists():
            raise SnapshotError(f"there is already a database at {self.path}; restore only into an empty data directory")

    def restore(self, source: Path, section: dict[str, Any], schema_version: int, progress: Progress) -> None:
        # Under a temporary name: a server never sees a half-copied file.
        db = source / section["file"]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.parent / (SQLITE_FILE + ".partial")
        total = db.stat().st_size
        with open(db, "rb") as src, open(partial, "wb") as dst:
            copied = 0
            for block in iter(lambda: src.read(1 << 20), b""):
                dst.write(block)
                copied += len(block)
                progress(copied, total, "bytes")
            dst.flush()
            os.fsync(dst.fileno())
        partial.rename(self.path)


class PostgresSnapshots:
    engine = "postgres"

    def __init__(self, url: str) -> None:
        from server.storage.postgres import PostgresDatabase
        self.db = PostgresDatabase(url, pool_size=1)

    def describe(self) -> str:
        return self.db.describe()

    def latest_version(self) -> int:
        return latest("postgres")

    def data_dir_entries(self) -> set[str]:
        return set()

    def take(self, target: Path, progress: Progress, pages_per_step: int) -> tuple[dict[str, Any], int]:
        from server.storage import postgres_copy
        directory = target / POSTGRES_DIR
        directory.mkdir(parents=True, exist_ok=True)
        tables, version = asyncio.run(self._with_db(lambda: postgres_copy.dump(self.db, directory, progress)))
        for table in tables:
            path = directory / table["file"]
            table.update(bytes=path.stat().st_size, sha256=sha256(path))
        section = {"engine": self.engine, "directory": POSTGRES_DIR, "tables": tables,
                   "bytes": sum(t["bytes"] for t in tables)}
        return section, version

    def media_paths(self, target: Path, section: dict[str, Any]) -> list[str]:
        from server.storage import postgres_copy
        return postgres_copy.media_paths(target / section["directory"], section)

    def verify(self, source: Path, section: dict[str, Any]) -> None:
        directory = source / section.get("directory", POSTGRES_DIR)
        for table in section["tables"]:
            path = directory / table["file"]
            if not path.exists() or sha256(path) != table["sha256"]:
                raise SnapshotError(f"{path} is missing or does not match the manifest's checksum")

    def ensure_target_empty(self) -> None:
        from server.storage import postgres_copy
        asyncio.run(self._with_db(lambda: postgres_copy.ensure_empty(self.db)))

    def restore(self, source: Path, section: dict[str, Any], schema_version: int, progress: Progress) -> None:
        from server.storage import postgres_copy
        asyncio.run(self._with_db(lambda: postgres_copy.load(self.db, source / section["directory"], section,
                                                             schema_version, progress)))

    async def _with_db(self, work: Callable[[], Awaitable[Any]]) -> Any:
        await self.db.connect()
        try:
            return await work()
        finally:
            await self.db.close()

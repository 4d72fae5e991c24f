"""Whole-database operations for the admin CLI (backup, restore checks). These run in the CLI's own
process, possibly next to a running server, so they use plain blocking sqlite3 connections of
their own; SQLite's locking makes that safe across processes."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

# Database file plus its transient companions, which a copy must never take on their own.
SIDECAR_SUFFIXES = ("-wal", "-shm", "-journal")


def online_backup(source: Path, target: Path, progress: Callable[[int, int], None] | None = None,
                  pages_per_step: int = 1024) -> None:
    """Copy `source` to `target` with SQLite's online backup API while writers carry on.

    The source connection holds one read transaction for the whole copy, so every step reads the
    same snapshot (in WAL mode writers are not blocked, and the backup never restarts); the result
    is the database exactly as it was when the copy began. `progress(copied_pages, total_pages)`.
    """
    if not source.exists():
        raise FileNotFoundError(source)
    src = sqlite3.connect(source, isolation_level=None)
    try:
        src.execute("PRAGMA busy_timeout = 10000")
        src.execute("PRAGMA query_only = ON")
        src.execute("BEGIN")
        src.execute("SELECT count(*) FROM sqlite_schema").fetchone()  # takes the read snapshot
        dest = sqlite3.connect(target)
        try:
            def step(status: int, remaining: int, total: int) -> None:
                if progress is not None:
                    progress(total - remaining, total)
            src.backup(dest, pages=pages_per_step, progress=step)
            # A backup is a standalone file: no WAL companion needed to read it.
            dest.execute("PRAGMA journal_mode = DELETE")
        finally:
            dest.close()
        src.execute("COMMIT")
    finally:
        src.close()


def integrity_check(path: Path) -> str:
    """'ok', or SQLite's first complaint."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def schema_version(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
        return int(row[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def local_media_paths(path: Path) -> list[str]:
    """Files our media rows point at (relative to the media directory), to check a copy is whole."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT file_path FROM media_attachments WHERE file_path IS NOT NULL AND file_path != ''"
                            " UNION SELECT preview_path FROM media_attachments WHERE preview_path IS NOT NULL"
                            " AND preview_path != ''").fetchall()
        return [r[0] for r in rows]
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()

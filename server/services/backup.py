"""Backup and restore of a whole instance: a consistent snapshot of the database (safe while the
server runs; see server/storage/snapshots.py for how each engine takes one) plus every other file in
the data directory (media).

A backup is a directory:
    manifest.json        written last: a backup without it is incomplete
    crosstalk.sqlite3    SQLite: a consistent snapshot, standalone (no WAL file)
    database/*.copy      PostgreSQL: one file per table, all from one snapshot
    files/...            the rest of the data directory (media/...), same layout
A backup restores into the engine it was taken from.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from server.ids import now_iso
from server.services.errors import ServiceError
from server.settings import Settings
from server.storage import snapshots
from server.storage.snapshots import SnapshotError
from server.version import VERSION

_ENGINES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
FORMAT = "crosstalk-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
FILES_DIR = "files"
# Entries of a data directory that are not data: volume artefacts and our own scratch files.
IGNORED = {"lost+found", ".write-test"}


class Progress:
    """Progress lines on a stream, at most a few per second, always the last one."""

    def __init__(self, out: TextIO, interval: float = 0.5) -> None:
        self.out, self.interval = out, interval
        self._last = 0.0

    def __call__(self, label: str, done: int, total: int, unit: str, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._last < self.interval:
            return
        self._last = now
        percent = 100 if total == 0 else int(done * 100 / total)
        self.out.write(f"{label}: {percent:3d}% ({done}/{total} {unit})\n")
        self.out.flush()


def _data_files(data_dir: Path, skip: set[str], exclude: Path) -> Iterator[Path]:
    """Every file of the data directory except the live database (`skip`: its file and companions),
    scratch files and `exclude` (the backup itself, when it is written inside the data directory)."""
    exclude = exclude.resolve()
    for root, dirs, files in os.walk(data_dir):
        rel_root = Path(root).relative_to(data_dir)
        if rel_root == Path("."):
            dirs[:] = [d for d in dirs if d not in IGNORED]
        dirs[:] = [d for d in dirs if (Path(root) / d).resolve() != exclude]
        dirs.sort()
        for name in sorted(files):
            if rel_root == Path(".") and (name in skip or name in IGNORED):
                continue
            if name.endswith(".partial"):
                continue
            yield Path(root) / name


def _empty_or_missing(path: Path) -> bool:
    return not path.exists() or (path.is_dir() and not [p for p in path.iterdir() if p.name not in IGNORED])


def backup(settings: Settings, target: Path, out: TextIO, pages_per_step: int = 1024) -> dict[str, Any]:
    """Copy the running (or stopped) instance's data into `target`, which must be new or empty."""
    database = snapshots.for_settings(settings)
    if not _empty_or_missing(target):
        raise ServiceError(f"{target} exists and is not empty; back up into a new directory")
    target.mkdir(parents=True, exist_ok=True)
    progress = Progress(out)

    try:
        section, schema_version = database.take(
            target, lambda done, total, unit: progress("database", done, total, unit), pages_per_step)
    except SnapshotError as exc:
        raise ServiceError(str(exc)) from None
    progress("database", 1, 1, "copied", final=True)

    # Files after the database: everything the snapshot refers to existed when it was taken.
    files = list(_data_files(settings.data_path, database.data_dir_entries(), exclude=target))
    total_bytes = sum(f.stat().st_size for f in files if f.exists())
    copied = copied_bytes = 0
    for path in files:
        dest = target / FILES_DIR / path.relative_to(settings.data_path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copy2(path, dest)
        except FileNotFoundError:
            continue  # deleted while we copied (a media file removed after the snapshot)
        copied += 1
        copied_bytes += dest.stat().st_size
        progress("files", copied_bytes, total_bytes, "bytes")
    progress("files", copied_bytes, total_bytes, "bytes", final=True)

    media_root = target / FILES_DIR / "media"
    missing = [p for p in database.media_paths(target, section) if not (media_root / p).exists()]
    if missing:
        out.write(f"warning: {len(missing)} media file(s) named in the database were not found, e.g. {missing[0]}\n")

    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "crosstalk_version": VERSION,
        "schema_version": schema_version, "created_at": now_iso(), "domain": settings.domain,
        "database": section,
        "files": {"directory": FILES_DIR, "count": copied, "bytes": copied_bytes, "missing_media": len(missing)},
    }
    tmp = target / (MANIFEST + ".partial")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    tmp.rename(target / MANIFEST)
    return manifest


def read_manifest(source: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((source / MANIFEST).read_text())
    except FileNotFoundError:
        raise ServiceError(f"{source} is not a complete Crosstalk backup (no {MANIFEST})") from None
    except (OSError, ValueError) as exc:
        raise ServiceError(f"{source / MANIFEST} cannot be read: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ServiceError(f"{source} is not a Crosstalk backup")
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise ServiceError(f"{source} was written by a newer Crosstalk ({manifest.get('crosstalk_version')})")
    return manifest


def restore(settings: Settings, source: Path, out: TextIO) -> dict[str, Any]:
    """Put a backup into the configured data directory, which must be empty or missing."""
    manifest = read_manifest(source)
    database = snapshots.for_settings(settings)
    section = manifest["database"]
    engine = section.get("engine", "sqlite")  # backups from before PostgreSQL support are SQLite ones
    if engine != database.engine:
        raise ServiceError(f"the backup is of a {_ENGINES.get(engine, engine)} database but this configuration uses "
                           f"{_ENGINES[database.engine]} (database.url); restore it into the same kind of database")
    latest = database.latest_version()
    if manifest.get("schema_version", 0) > latest:
        raise ServiceError(f"the backup's database is at schema version {manifest['schema_version']}, newer than "
                           f"this Crosstalk ({VERSION}, version {latest}); restore it with a newer release")
    data_dir = settings.data_path
    try:
        database.verify(source, section)
        if not _empty_or_missing(data_dir):
            raise ServiceError(f"the data directory {data_dir} is not empty; restore only into an empty one "
                               "(move the old one aside first)")
        database.ensure_target_empty()
    except SnapshotError as exc:
        raise ServiceError(str(exc)) from None
    if manifest.get("domain") and manifest["domain"] != settings.domain:
        raise ServiceError(f"the backup is of {manifest['domain']} but this configuration is for {settings.domain}; "
                           f"set CROSSTALK_DOMAIN={manifest['domain']} (accounts and posts are known to other "
                           "servers by their domain, so it cannot change)")
    data_dir.mkdir(parents=True, exist_ok=True)
    progress = Progress(out)

    files_root = source / manifest["files"].get("directory", FILES_DIR)
    files = [p for p in sorted(files_root.rglob("*")) if p.is_file()] if files_root.exists() else []
    total = sum(p.stat().st_size for p in files)
    done = 0
    for path in files:
        dest = data_dir / path.relative_to(files_root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)
        done += path.stat().st_size
        progress("files", done, total, "bytes")
    progress("files", done, total, "bytes", final=True)

    # The database last, all at once: a server never sees a half-restored one.
    try:
        database.restore(source, section, int(manifest.get("schema_version", 0)),
                         lambda done, total, unit: progress("database", done, total, unit))
    except SnapshotError as exc:
        raise ServiceError(str(exc)) from None
    progress("database", 1, 1, "restored", final=True)
    return manifest

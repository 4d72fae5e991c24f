"""Uploaded media in a directory of this host (the default): <data_dir>/media/<name>."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TypeVar

from server.ports import StoredFile

log = logging.getLogger("crosstalk.media")
T = TypeVar("T")


class LocalFiles:
    def __init__(self, root: Path) -> None:
        self.root = root
        # File I/O off the event loop; two threads are plenty for a disk.
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="files")

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        self._executor.shutdown(wait=False)

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, partial(fn, *args))

    async def write(self, files: list[tuple[str, bytes, str]]) -> None:
        await self._run(self._write, files)

    def _write(self, files: list[tuple[str, bytes, str]]) -> None:
        """Each file whole (temporary name, then rename); on any failure what was written goes again."""
        done: list[Path] = []
        try:
            for name, data, _ in files:
                path = self.root / name
                path.parent.mkdir(parents=True, exist_ok=True)
                temp = path.with_name(f".{path.name}.tmp")
                with open(temp, "wb") as fh:
                    fh.write(data)
                os.replace(temp, path)
                done.append(path)
        except BaseException:
            for path in done:
                path.unlink(missing_ok=True)
            for name, _, _ in files:
                (self.root / name).with_name(f".{Path(name).name}.tmp").unlink(missing_ok=True)
            raise

    async def remove(self, names: list[str]) -> None:
        await self._run(self._remove, names)

    def _remove(self, names: list[str]) -> None:
        for name in names:
            try:
                (self.root / name).unlink(missing_ok=True)
            except OSError as exc:
                log.warning("could not remove media file %s: %s", name, exc.strerror)

    async def read(self, name: str) -> bytes | None:
        path = self.root / name
        try:
            return await self._run(path.read_bytes)
        except FileNotFoundError:
            return None

    async def open(self, name: str) -> StoredFile | None:
        path = self.root / name
        return StoredFile(path=path) if await self._run(path.is_file) else None

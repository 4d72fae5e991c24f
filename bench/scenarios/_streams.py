"""Shared by the streaming scenarios: bearer tokens for any local accounts (minted into the working
copy where the dataset has none), and the WebSocket client processes (bench/wsclients.py), started
together, each holding its share of the connections, pinned to the load CPU."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import sqlite3
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench import procs
from bench.context import LOAD_CPU
from bench.dataset import Dataset
from server.ids import now_iso
from server.services import secrets

CLIENTS_PER_PROCESS = 2_500  # one asyncio process handles this many sockets without becoming the bottleneck
DESCRIPTORS_PER_PROCESS = 200  # a server's or client's own files, sockets and pipes besides the streams


def local_followers(db_path: Path, account_id: int) -> list[int]:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return [r[0] for r in conn.execute(
            "SELECT f.account_id FROM follows f JOIN accounts a ON a.id = f.account_id"
            " WHERE f.target_account_id = ? AND a.domain = '' ORDER BY f.account_id", (account_id,))]
    finally:
        conn.close()


def local_accounts(db_path: Path) -> list[int]:
    """Local accounts people sign in to (not the instance's own actor, which the server creates)."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return [r[0] for r in conn.execute("SELECT a.id FROM accounts a JOIN users u ON u.account_id = a.id"
                                           " WHERE a.domain = '' ORDER BY a.id")]
    finally:
        conn.close()


def tokens_for(ds: Dataset, db_path: Path, account_ids: list[int]) -> list[str]:
    """A token for each account: the dataset's own where it has one, else one minted (deterministic,
    inserted into the working copy at `db_path` the way the generator does)."""
    known = {t["account_id"]: t["token"] for t in ds.tokens}
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        app_id = conn.execute("SELECT id FROM apps WHERE client_id = 'crosstalk-bench'").fetchone()[0]
        next_id = conn.execute("SELECT max(id) FROM tokens").fetchone()[0] + 1
        now = now_iso()
        tokens = []
        conn.execute("BEGIN")
        for account_id in account_ids:
            token = known.get(account_id)
            if token is None:
                token = base64.urlsafe_b64encode(hashlib.sha256(b"bench-stream-%d" % account_id).digest()
                                                 ).decode().rstrip("=")
                inserted = conn.execute(
                    "INSERT OR IGNORE INTO tokens (id, token_hash, app_id, account_id, scopes, created_at)"
                    " VALUES (?, ?, ?, ?, 'read write follow', ?)",
                    (next_id, secrets.token_hash(token), app_id, account_id, now)).rowcount
                next_id += inserted
            tokens.append(token)
        conn.execute("COMMIT")
    finally:
        conn.close()
    return tokens


def split(count: int, per_process: int = CLIENTS_PER_PROCESS) -> list[int]:
    """`count` connections as evenly as possible over the fewest processes of at most `per_process`."""
    processes = max(1, -(-count // per_process))
    return [count // processes + (1 if i < count % processes else 0) for i in range(processes)]


def descriptors_needed(streams: int) -> tuple[int, int]:
    """Open files the server and each client process need for `streams` connections."""
    return streams + DESCRIPTORS_PER_PROCESS, max(split(streams)) + DESCRIPTORS_PER_PROCESS


class Clients:
    """One client process: started, READY awaited, STOP sent, results read; always stopped."""

    def __init__(self, url: str, tokens_file: Path, max_seconds: float, connect_seconds: float) -> None:
        self.result_file = tokens_file.with_suffix(".result.json")
        self.cmd = procs.pinned([sys.executable, "-m", "bench.wsclients", "--url", url, "--tokens", str(tokens_file),
                                 "--max-seconds", str(max_seconds), "--connect-seconds", str(connect_seconds),
                                 "--result", str(self.result_file)], LOAD_CPU)
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, limit_s: float) -> dict[str, Any]:
        self.proc = await asyncio.create_subprocess_exec(
            *self.cmd, cwd=procs.ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True, limit=64 * 1024 * 1024)
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), limit_s)
        if not line.startswith(b"READY "):
            err = await self.proc.stderr.read() if self.proc.stderr else b""
            raise RuntimeError(f"streaming clients failed to start: {line!r} {err.decode(errors='replace')[-2000:]}")
        return json.loads(line[6:])

    async def finish(self, limit_s: float) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(b"STOP\n")
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), limit_s)
        await asyncio.wait_for(self.proc.wait(), limit_s)
        if line.strip() != b"DONE":
            err = await self.proc.stderr.read() if self.proc.stderr else b""
            raise RuntimeError(f"streaming clients exited ({self.proc.returncode}) without their answer: {line[:200]!r}"
                               f" {err.decode(errors='replace')[-2000:]}")
        return json.loads(self.result_file.read_text())

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()


class ClientGroup:
    """The connections of `tokens` (one each) spread over client processes of `per_process` at most,
    started together; their answers merged as if one process had given them."""

    def __init__(self, url: str, tokens: list[str], work: Path, max_seconds: float,
                 per_process: int = CLIENTS_PER_PROCESS, connect_seconds: float = 120.0) -> None:
        self.members: list[Clients] = []
        start = 0
        for i, size in enumerate(split(len(tokens), per_process)):
            tokens_file = work / f"stream-tokens-{i}.txt"
            tokens_file.write_text("".join(t + "\n" for t in tokens[start:start + size]))
            start += size
            self.members.append(Clients(url, tokens_file, max_seconds, connect_seconds))

    async def start(self, limit_s: float) -> dict[str, Any]:
        ready = await asyncio.gather(*(c.start(limit_s) for c in self.members))
        return {"connected": sum(r["connected"] for r in ready), "failed": sum(r["failed"] for r in ready),
                "errors": [e for r in ready for e in r["errors"]][:5],
                "connect_seconds": max(r["connect_seconds"] for r in ready), "processes": len(ready)}

    async def finish(self, limit_s: float) -> dict[str, Any]:
        done = await asyncio.gather(*(c.finish(limit_s) for c in self.members))
        receipts: dict[str, list[float]] = defaultdict(list)
        other: dict[str, int] = defaultdict(int)
        for d in done:
            for status_id, times in d["receipts"].items():
                receipts[status_id].extend(times)
            for name, n in d["other_events"].items():
                other[name] += n
        return {"connected": sum(d["connected"] for d in done), "failed": sum(d["failed"] for d in done),
                "closed_early": sum(d["closed_early"] for d in done), "receipts": dict(receipts),
                "per_connection": [n for d in done for n in d["per_connection"]], "other_events": dict(other)}

    async def kill(self) -> None:
        for c in self.members:
            await c.kill()

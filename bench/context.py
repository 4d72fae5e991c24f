"""What every scenario gets: datasets, servers (pinned to CPU 0), load (pinned to CPU 1), the
hello-world baseline measured once per run, RSS sampling, and result helpers."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench import dataset as datasets
from bench import load as loads
from bench import procs
from bench.dataset import Dataset, Spec

SERVER_CPU = 0
LOAD_CPU = 1
CROSSTALK_PORT = 18080  # the port in the datasets' domain; another one is used if it is taken

FULL = Spec(users=10_000, follows=200, statuses=1_000_000)
# 1,100 users so that the POST author still has its 1,000 local followers.
SMALL = Spec(users=1_100, follows=50, statuses=20_000)


@dataclass
class Context:
    small: bool
    duration: float  # seconds of measured load per run
    warmup: float  # seconds of unmeasured load before each measured run
    connections: int
    tool: str  # "wrk" or "python"
    data_root: Path
    regenerate: bool = False
    keep_work: bool = False
    log: Callable[[str], None] = print
    spec: Spec = field(init=False)
    work_root: Path = field(init=False)
    _datasets: dict[Spec, Dataset] = field(default_factory=dict, init=False)
    _copies: dict[Path, Path] = field(default_factory=dict, init=False)
    _baseline: dict[str, Any] | None = field(default=None, init=False)
    used_datasets: dict[str, dict[str, Any]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.spec = SMALL if self.small else FULL
        self.work_root = self.data_root / "work"

    # -- data -----------------------------------------------------------------------------------

    async def dataset(self, spec: Spec | None = None) -> Dataset:
        spec = spec or self.spec
        if spec not in self._datasets:
            ds = await datasets.ensure(spec, self.data_root, self.log, regenerate=self.regenerate)
            self._datasets[spec] = ds
            self.used_datasets[spec.key] = {"counts": ds.meta["counts"], "notes": ds.meta["notes"],
                                            "generation_seconds": ds.meta.get("generation_seconds")}
        return self._datasets[spec]

    def working_copy(self, ds: Dataset) -> Path:
        """A per-run copy of the dataset's directory, so runs never change the cached dataset."""
        if ds.path not in self._copies:
            target = self.work_root / ds.path.name
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            started = time.monotonic()
            shutil.copyfile(ds.db_path, target / datasets.DB_NAME)
            self.log(f"working copy of {ds.path.name} made in {time.monotonic() - started:.1f} s")
            self._copies[ds.path] = target
        return self._copies[ds.path]

    def cleanup(self) -> None:
        if not self.keep_work:
            shutil.rmtree(self.work_root, ignore_errors=True)

    # -- servers --------------------------------------------------------------------------------

    @asynccontextmanager
    async def crosstalk(self, ds: Dataset) -> AsyncIterator[procs.Server]:
        """The real server (`python -m server.cli serve`) on a working copy of `ds`, pinned to CPU 0."""
        data_dir = self.working_copy(ds)
        port = procs.free_port(CROSSTALK_PORT)
        server = await procs.start("crosstalk", procs.crosstalk_cmd(), port=port,
                                   env=procs.crosstalk_env(data_dir, ds.spec.domain, port), cpu=SERVER_CPU,
                                   log_path=self.work_root / "crosstalk.log", ready_path="/api/v1/instance")
        try:
            yield server
        finally:
            procs.stop(server)

    @asynccontextmanager
    async def baseline_server(self) -> AsyncIterator[procs.Server]:
        port = procs.free_port()
        server = await procs.start("baseline", procs.baseline_cmd(port), port=port, env={}, cpu=SERVER_CPU,
                                   log_path=self.work_root / "baseline.log")
        try:
            yield server
        finally:
            procs.stop(server)

    # -- load -----------------------------------------------------------------------------------

    async def load(self, server: procs.Server, path: str, *, tokens_file: Path | None,
                   connections: int | None = None, duration: float | None = None, warmup: float | None = None,
                   max_requests: int = 5_000_000) -> tuple[loads.LoadResult, float]:
        """Warm up, then one measured closed-loop run. Returns the result and the peak RSS (MB) seen
        during the measured run (sampled every 0.25 s)."""
        connections = connections or self.connections
        warmup = self.warmup if warmup is None else warmup
        if warmup > 0:
            await loads.http_load(self.tool, server.url + path, tokens_file=tokens_file, connections=connections,
                                  duration=warmup, max_requests=max_requests, cpu=LOAD_CPU)
        peak = 0.0
        running = True

        async def sample() -> None:
            nonlocal peak
            while running:
                peak = max(peak, server.rss_mb())
                await asyncio.sleep(0.25)

        sampler = asyncio.create_task(sample())
        cpu_before = server.cpu_seconds()
        try:
            result = await loads.http_load(self.tool, server.url + path, tokens_file=tokens_file,
                                           connections=connections, duration=duration or self.duration,
                                           max_requests=max_requests, cpu=LOAD_CPU)
        finally:
            running = False
            await sampler
        # Server CPU per request barely depends on what else the machine runs: a steadier figure
        # than req/s when neighbours steal CPU time.
        if result.requests:
            result.cpu_ms_per_request = round((server.cpu_seconds() - cpu_before) * 1000 / result.requests, 3)
        return result, max(peak, server.rss_mb())

    async def baseline(self) -> dict[str, Any]:
        """The bare aiohttp+uvloop hello-world server under the same load: measured once per run."""
        if self._baseline is None:
            tokens = (await self.dataset()).path / "tokens.txt"
            async with self.baseline_server() as server:
                idle = server.rss_mb()
                result, peak = await self.load(server, "/", tokens_file=tokens)
            self.check(result, "baseline")
            self._baseline = {"load": result.as_dict(), "rss_idle_mb": round(idle, 1),
                              "rss_load_mb": round(peak, 1)}
            self.log(f"baseline hello-world: {result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} ms, "
                     f"{result.cpu_ms_per_request:.3f} CPU ms/request")
        return self._baseline

    def check(self, result: loads.LoadResult, what: str) -> None:
        if result.requests == 0:
            raise RuntimeError(f"{what}: no request completed")
        if result.non_2xx or result.errors:
            self.log(f"WARNING {what}: {result.non_2xx} non-2xx answers, {result.errors} socket errors")

    # -- small helpers for scenarios ---------------------------------------------------------------

    @staticmethod
    async def get_json(url: str, token: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with aiohttp.ClientSession() as session, session.get(
                url, headers=headers, timeout=aiohttp.ClientTimeout(total=30)) as resp:
            if resp.status != 200:
                raise RuntimeError(f"GET {url}: {resp.status} {await resp.text()}")
            return await resp.json()

    @staticmethod
    async def post_json(url: str, body: dict[str, Any], token: str) -> Any:
        async with aiohttp.ClientSession() as session, session.post(
                url, json=body, headers={"Authorization": f"Bearer {token}"},
                timeout=aiohttp.ClientTimeout(total=30)) as resp:
            if resp.status != 200:
                raise RuntimeError(f"POST {url}: {resp.status} {await resp.text()}")
            return await resp.json()


class Result:
    """What a scenario reports: metrics (in a table), pass/fail targets, and notes."""

    def __init__(self) -> None:
        self.metrics: list[dict[str, Any]] = []
        self.targets: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.raw: dict[str, Any] = {}

    def add(self, key: str, value: float | int | str | None, unit: str = "", label: str | None = None) -> None:
        self.metrics.append({"key": key, "label": label or key, "value": value, "unit": unit})

    def target(self, label: str, value: float, op: str, limit: float, unit: str = "") -> bool:
        ok = value >= limit if op == ">=" else value <= limit
        self.targets.append({"label": label, "value": value, "op": op, "limit": limit, "unit": unit, "ok": ok})
        return ok

    def note(self, text: str) -> None:
        self.notes.append(text)

    def as_dict(self) -> dict[str, Any]:
        return {"metrics": self.metrics, "targets": self.targets, "notes": self.notes, "raw": self.raw}

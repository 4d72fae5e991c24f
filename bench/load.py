"""Drive HTTP load from a separate, pinned process: wrk when installed (Debian package `wrk`), else
bench/loadgen.py (aiohttp). Every run is bounded in time (-d / --duration, plus a hard kill) and in
request count (a Lua counter stops wrk's thread; --max-requests for the Python client). Each request
carries a random token from a tokens file and, with a paths file, goes to a random one of its paths
(e.g. the statuses of many accounts)."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.procs import ROOT, CpuSet, pinned

# wrk: random bearer token per request, a request cap, and a JSON summary with exact percentiles.
_WRK_LUA = """
local tokens = {}
local paths = {}
local max_requests = %(max_requests)d
local count = 0
local method = "%(method)s"

function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
  for line in io.lines("%(tokens)s") do
    if #line > 0 then tokens[#tokens + 1] = "Bearer " .. line end
  end
  for line in io.lines("%(paths)s") do
    if #line > 0 then paths[#paths + 1] = line end
  end
end

function request()
  local headers = {}
  if #tokens > 0 then headers["Authorization"] = tokens[math.random(#tokens)] end
  return wrk.format(method, paths[math.random(#paths)], headers)
end

%(response)s
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "connect": %%d, "read": %%d, "write": %%d, ' ..
    '"status": %%d, "timeout": %%d, "p50_us": %%d, "p90_us": %%d, "p99_us": %%d, "max_us": %%d, "mean_us": %%f}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


@dataclass
class LoadResult:
    tool: str
    connections: int
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    errors: int
    extra: dict[str, Any] = field(default_factory=dict)
    cpu_ms_per_request: float = 0.0  # server CPU (all threads) per answered request, when measured

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def choose_tool(preference: str) -> str:
    if preference == "wrk" and not wrk_available():
        raise SystemExit("wrk is not installed (apt-get install -y wrk), or use --loadgen python")
    if preference == "auto":
        return "wrk" if wrk_available() else "python"
    return preference


async def run_process(cmd: list[str], hard_timeout: float) -> str:
    """Run a helper process to completion (killed after `hard_timeout` s); its stdout."""
    return await _run(cmd, hard_timeout)


async def _run(cmd: list[str], hard_timeout: float) -> str:
    proc = await asyncio.create_subprocess_exec(*cmd, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, start_new_session=True)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), hard_timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise RuntimeError(f"load generator still running after {hard_timeout:.0f} s: killed") from None
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode}): {err.decode(errors='replace')[-2000:]}")
    return out.decode()


async def http_load(tool: str, url: str, *, tokens_file: Path | None, connections: int, duration: float,
                    max_requests: int, cpu: CpuSet, method: str = "GET",
                    paths_file: Path | None = None) -> LoadResult:
    """Closed-loop load: `connections` concurrent keep-alive connections for `duration` seconds, to
    `url`, or with `paths_file` to a random one of its paths (one a line) on `url`'s host."""
    assert url.startswith("http://127.0.0.1:"), "benchmarks only talk to loopback"
    if tool == "wrk":
        return await _wrk(url, tokens_file, connections, duration, max_requests, cpu, method, paths_file)
    cmd = [sys.executable, "-m", "bench.loadgen", "--url", url, "--method", method,
           "--connections", str(connections), "--duration", str(duration), "--max-requests", str(max_requests)]
    if tokens_file is not None:
        cmd += ["--tokens", str(tokens_file)]
    if paths_file is not None:
        cmd += ["--paths", str(paths_file)]
    data = json.loads((await _run(pinned(cmd, cpu), duration + 60)).strip().splitlines()[-1])
    return _from_loadgen("python", connections, data)


async def sequential(url: str, *, tokens_file: Path, bodies_file: Path, count: int, max_seconds: float,
                     cpu: CpuSet, method: str = "POST", pause_ms: float = 0.0) -> LoadResult:
    """One request at a time (latency of single requests, measured by the client process),
    optionally pausing `pause_ms` after each answer."""
    cmd = [sys.executable, "-m", "bench.loadgen", "--url", url, "--method", method, "--connections", "1",
           "--duration", str(max_seconds), "--max-requests", str(count), "--tokens", str(tokens_file),
           "--bodies", str(bodies_file), "--record-ids", "--sequential-tokens", "--pause-ms", str(pause_ms)]
    data = json.loads((await _run(pinned(cmd, cpu), max_seconds + 60)).strip().splitlines()[-1])
    return _from_loadgen("python", 1, data)


def _from_loadgen(tool: str, connections: int, data: dict[str, Any]) -> LoadResult:
    return LoadResult(tool=tool, connections=connections, requests=data["requests"], duration_s=data["duration_s"],
                      rps=data["rps"], p50_ms=data["p50_ms"], p90_ms=data["p90_ms"], p99_ms=data["p99_ms"],
                      max_ms=data["max_ms"], non_2xx=data["non_2xx"], errors=data["errors"],
                      extra={k: data[k] for k in ("statuses", "ids", "mean_ms") if k in data})


# Only when a run is capped by a request count: with a `response` function wrk copies every answer's
# headers and body into Lua, 0.02 ms of its CPU a request on a 37 kB timeline page, taken from the
# core it shares with a second server process in the scale-out comparison.
_WRK_COUNT_RESPONSES = """
function response(status, headers, body)
  count = count + 1
  if count >= max_requests then wrk.thread:stop() end
end
"""
UNCAPPED = 5_000_000  # more requests than any timed run makes


def _lua_string(path: Path) -> str:
    return str(path).replace("\\", "\\\\").replace('"', '\\"')


async def _wrk(url: str, tokens_file: Path | None, connections: int, duration: float, max_requests: int,
               cpu: CpuSet, method: str, paths_file: Path | None) -> LoadResult:
    base, _, path = url.partition("://")[2].partition("/")
    with tempfile.TemporaryDirectory(prefix="crosstalk-wrk-") as tmp:
        tokens = tokens_file or Path(tmp) / "no-tokens.txt"
        if tokens_file is None:
            tokens.write_text("")
        paths = paths_file or Path(tmp) / "path.txt"
        if paths_file is None:
            paths.write_text(f"/{path}\n")
        script = Path(tmp) / "load.lua"
        script.write_text(_WRK_LUA % {"max_requests": max_requests, "method": method,
                                      "tokens": _lua_string(tokens), "paths": _lua_string(paths),
                                      "response": _WRK_COUNT_RESPONSES if max_requests < UNCAPPED else ""})
        secs = max(1, round(duration))
        cmd = ["wrk", "-t1", f"-c{connections}", f"-d{secs}s", "--timeout", "10s", "-s", str(script),
               f"http://{base}/{path}"]
        out = await _run(pinned(cmd, cpu), secs + 60)
    line = next((x for x in out.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{out[-2000:]}")
    d = json.loads(line[len("WRKJSON "):])
    seconds = d["duration_us"] / 1e6
    errors = d["connect"] + d["read"] + d["write"] + d["timeout"]
    return LoadResult(tool="wrk", connections=connections, requests=d["requests"], duration_s=round(seconds, 3),
                      rps=round(d["requests"] / seconds, 1) if seconds else 0.0, p50_ms=d["p50_us"] / 1000,
                      p90_ms=d["p90_us"] / 1000, p99_ms=d["p99_us"] / 1000, max_ms=d["max_us"] / 1000,
                      non_2xx=d["status"], errors=errors, extra={"mean_ms": round(d["mean_us"] / 1000, 3)})


def raw_request(method: str, path: str, host: str, headers: dict[str, str] | None = None,
                body: bytes | None = None) -> bytes:
    """One HTTP/1.1 request as bytes, for bench/rawload.py (keep-alive; Content-Length when a body)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items() if k.lower() != "host"]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


async def raw_load(port: int, requests_file: Path, *, connections: int, duration: float, max_requests: int,
                   cpu: CpuSet, cycle: bool = False) -> dict[str, Any]:
    """Send pre-built raw requests (bench/rawload.py) from a separate pinned process; its JSON summary."""
    cmd = [sys.executable, "-m", "bench.rawload", "--port", str(port), "--requests", str(requests_file),
           "--connections", str(connections), "--duration", str(duration), "--max-requests", str(max_requests)]
    if cycle:
        cmd.append("--cycle")
    return json.loads((await _run(pinned(cmd, cpu), duration + 60)).strip().splitlines()[-1])

"""GET /api/v1/statuses/:id/context (ancestors and descendants, rendered for the viewer) of a random
one of 2,000 public or unlisted statuses in threads of three or more, under the home timeline's load,
as req/s against the hello-world baseline of the same run."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from bench.context import Context
from bench.scenarios._reads import Endpoint, measure, rendered, thread_members

NAME = "thread_context"
DESCRIPTION = "thread context req/s vs hello-world baseline (random threads and users' tokens, 16 connections)"


def paths(db_path: Path, rng: random.Random) -> list[str]:
    return [f"/api/v1/statuses/{s}/context" for s in thread_members(db_path, rng)]


def check(path: str, body: Any) -> int:
    if not isinstance(body, dict) or set(body) != {"ancestors", "descendants"}:
        raise RuntimeError(f"GET {path}: not a context: {str(body)[:300]}")
    ancestors = body["ancestors"]
    if [int(s["id"]) for s in ancestors] != sorted(int(s["id"]) for s in ancestors):
        raise RuntimeError(f"GET {path}: ancestors not oldest first")
    statuses = ancestors + body["descendants"]
    if not all(rendered(s) for s in statuses):
        raise RuntimeError(f"GET {path}: a status in the context is not fully rendered")
    return len(statuses)


ENDPOINT = Endpoint(NAME, "thread context", paths, check)


async def run(ctx: Context) -> dict[str, Any]:
    return await measure(ctx, ENDPOINT)

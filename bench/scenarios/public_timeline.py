"""GET /api/v1/timelines/public (20 statuses, rendered for the viewer) under the home timeline's load,
as req/s against the hello-world baseline of the same run."""

from __future__ import annotations

from typing import Any

from bench.context import Context
from bench.scenarios._reads import Endpoint, check_page, measure

NAME = "public_timeline"
DESCRIPTION = "public timeline req/s vs hello-world baseline (random users' tokens, 16 connections)"
PATH = "/api/v1/timelines/public"


def check_full_page(path: str, body: Any) -> int:
    if (n := check_page(path, body)) != 20:
        raise RuntimeError(f"GET {path}: {n} statuses, 20 expected")
    return n


ENDPOINT = Endpoint(NAME, "public timeline", lambda db, rng: [PATH], check_full_page)


async def run(ctx: Context) -> dict[str, Any]:
    return await measure(ctx, ENDPOINT)

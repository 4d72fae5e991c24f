"""GET /api/v1/timelines/public?local=true (20 statuses, rendered for the viewer) under the home
timeline's load, as req/s against the hello-world baseline of the same run."""

from __future__ import annotations

from typing import Any

from bench.context import Context
from bench.scenarios._reads import Endpoint, measure
from bench.scenarios.public_timeline import PATH, check_full_page

NAME = "local_timeline"
DESCRIPTION = "local timeline req/s vs hello-world baseline (random users' tokens, 16 connections)"

ENDPOINT = Endpoint(NAME, "local timeline", lambda db, rng: [f"{PATH}?local=true"], check_full_page)


async def run(ctx: Context) -> dict[str, Any]:
    return await measure(ctx, ENDPOINT)

"""GET /api/v1/accounts/:id/statuses (a profile's first page, rendered for the viewer) of a random one
of 2,000 accounts with a page of statuses or more, under the home timeline's load, as req/s against
the hello-world baseline of the same run."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from bench.context import Context
from bench.scenarios._reads import Endpoint, accounts_with_statuses, check_page, measure

NAME = "account_statuses"
DESCRIPTION = "account statuses req/s vs hello-world baseline (random accounts and users' tokens, 16 connections)"


def paths(db_path: Path, rng: random.Random) -> list[str]:
    return [f"/api/v1/accounts/{a}/statuses" for a in accounts_with_statuses(db_path, rng)]


def check(path: str, body: Any) -> int:
    """The account's own statuses and boosts, none of anyone else's."""
    n = check_page(path, body)
    account_id = path.split("/")[4]
    if n == 0 or any(s["account"]["id"] != account_id for s in body):
        raise RuntimeError(f"GET {path}: {n} statuses, or statuses of another account")
    return n


ENDPOINT = Endpoint(NAME, "account statuses", paths, check)


async def run(ctx: Context) -> dict[str, Any]:
    return await measure(ctx, ENDPOINT)

"""Benchmark scenarios: each module here exposes NAME, DESCRIPTION and `async def run(ctx) -> dict`
(ctx is a bench.context.Context; build the answer with bench.context.Result). `python -m bench
--only NAME` runs one. Modules run in ORDER first, then any others alphabetically."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

ORDER = ["home_timeline", "public_timeline", "local_timeline", "account_statuses", "thread_context", "post_status",
         "search", "streaming", "streaming_idle", "inbox", "delivery", "memory"]


def discover() -> dict[str, ModuleType]:
    names = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
    ordered = [n for n in ORDER if n in names] + sorted(n for n in names if n not in ORDER)
    found = {}
    for name in ordered:
        module = importlib.import_module(f"{__name__}.{name}")
        found[getattr(module, "NAME", name)] = module
    return found

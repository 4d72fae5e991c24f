"""Report entities."""

from __future__ import annotations

from typing import Any

from server.domain.records import Account, Report
from server.render.accounts import account_json
from server.render.bundles import Site


def report_json(site: Site, r: Report, target: Account | None) -> dict[str, Any]:
    return {
        "id": str(r.id),
        "action_taken": r.action_taken_at is not None,
        "action_taken_at": r.action_taken_at,
        "category": r.category,
        "comment": r.comment,
        # Forwarding to the reported account's server is not implemented yet, so nothing has been.
        "forwarded": False,
        "created_at": r.created_at,
        "status_ids": [str(s) for s in r.status_ids] or None,
        "rule_ids": [str(i) for i in r.rule_ids] or None,
        "target_account": account_json(site, target) if target is not None else None,
    }


def reports_json(site: Site, items: list[Report], accounts: dict[int, Account]) -> list[dict[str, Any]]:
    """`accounts` holds (at least) the reported accounts."""
    return [report_json(site, r, accounts.get(r.target_account_id)) for r in items]

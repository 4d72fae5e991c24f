"""Report entities."""

from __future__ import annotations

from typing import Any

from server.records import Report
from server.render.mastodon import account_json
from server.state import State
from server.storage import accounts as account_store


async def reports_json(state: State, items: list[Report]) -> list[dict[str, Any]]:
    targets = await account_store.get_many(state.db, [r.target_account_id for r in items])
    out = []
    for r in items:
        target = targets.get(r.target_account_id)
        out.append({
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
            "target_account": account_json(state, target) if target is not None else None,
        })
    return out

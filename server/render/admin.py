"""Mastodon's admin entities (Admin::Account, Admin::Report) and audit-log entries. Pure: the
records come in, with the public Account and Status entities already rendered by the caller."""

from __future__ import annotations

from typing import Any

import msgspec

from server.domain.identity import AdminAccount, AdminReport, AuditEntry, Role

# Mastodon's role permission bits: administrator (1); for moderators view_audit_log (4),
# view_dashboard (8), manage_reports (16), manage_taxonomies (256) and manage_users (1024); users may
# invite (65536).
ROLES: dict[Role, dict[str, Any]] = {
    Role.ADMIN: {"id": "3", "name": "Admin", "permissions": "1", "color": "", "highlighted": True},
    Role.MODERATOR: {"id": "2", "name": "Moderator", "permissions": "1308", "color": "", "highlighted": True},
    Role.USER: {"id": "-99", "name": "", "permissions": "65536", "color": "", "highlighted": False},
}


def admin_account_json(item: AdminAccount, account_entity: dict[str, Any]) -> dict[str, Any]:
    a, u, m = item.account, item.user, item.moderation
    return {
        "id": str(a.id),
        "username": a.username,
        "domain": None if a.local else a.domain,
        "created_at": a.created_at,
        "email": u.email if u else None,
        "ip": item.last_address,
        "ips": [],
        "locale": u.locale if u else None,
        "invite_request": None,
        "role": ROLES[item.role],
        "confirmed": u is not None,
        "approved": bool(u.approved) if u else True,
        "disabled": bool(u.disabled) if u else False,
        "silenced": m.silenced_at is not None,
        "suspended": bool(a.suspended),
        "sensitized": m.sensitized_at is not None,
        "account": account_entity,
        "created_by_application_id": None,
        "invited_by_account_id": None,
    }


def admin_report_json(item: AdminReport, accounts: dict[int, dict[str, Any]],
                      statuses: list[dict[str, Any]]) -> dict[str, Any]:
    """`accounts`: Admin::Account entities by account id."""
    r = item.report
    return {
        "id": str(r.id),
        "action_taken": r.action_taken_at is not None,
        "action_taken_at": r.action_taken_at,
        "category": r.category,
        "comment": r.comment,
        "forwarded": False,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        "account": accounts.get(r.account_id),
        "target_account": accounts[r.target_account_id],
        "assigned_account": accounts.get(item.assigned.account.id) if item.assigned else None,
        "action_taken_by_account": accounts.get(item.action_taken_by.account.id) if item.action_taken_by else None,
        "statuses": statuses,
        "rules": [],
    }


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    """One audit entry, as the API and `crosstalk admin audit-log --json` (one per line) give it."""
    return {"id": str(entry.id), "at": entry.at, "actor": entry.actor,
            "actor_id": None if entry.actor_id is None else str(entry.actor_id), "action": entry.action,
            "target_type": entry.target_type, "target_id": entry.target_id, "target": entry.target,
            "address": entry.address, "outcome": entry.outcome, "detail": msgspec.json.decode(entry.detail)}

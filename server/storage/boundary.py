"""Domain rules and the boundary log."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from server.domain.records import DomainRule
from server.ids import new_id, now_iso
from server.ports import Reader, Tx
from server.storage import relations

__all__ = ["RULE_FIELDS", "DomainRule"]


RULE_FIELDS = [f for f in DomainRule.__struct_fields__ if f not in ("id", "domain", "kind", "created_at", "updated_at")]


def _rule(row: Any) -> DomainRule:
    data = dict(row)
    for flag in ("reject_media", "reject_reports", "include_subdomains", "followers_only", "no_direct", "text_only",
                 "publish_policy"):
        data[flag] = bool(data[flag])
    return DomainRule(**data)


async def all_rules(db: Reader) -> list[DomainRule]:
    return [_rule(r) for r in await db.fetchall("SELECT * FROM domain_rules ORDER BY kind, domain")]


async def rules_version(db: Reader) -> str:
    """Changes whenever a rule changes (also when another process, like the admin CLI, changed it)."""
    row = await db.fetchone("SELECT count(*), coalesce(max(updated_at), '') FROM domain_rules")
    assert row is not None  # an aggregate always answers one row
    return f"{row[0]}:{row[1]}"


async def upsert_rule(tx: Tx, domain: str, kind: str, values: dict[str, Any]) -> DomainRule:
    unknown = set(values) - set(RULE_FIELDS)
    assert not unknown, unknown
    now = now_iso()
    await tx.execute("INSERT INTO domain_rules (id, domain, kind, created_at, updated_at) VALUES (?, ?, ?, ?, ?)"
                     " ON CONFLICT (domain, kind) DO NOTHING", (new_id(), domain, kind, now, now))
    rule_id = await tx.fetchval("SELECT id FROM domain_rules WHERE domain = ? AND kind = ?", (domain, kind))
    if values:
        assignments = ", ".join(f"{k} = ?" for k in values)
        params = [int(v) if isinstance(v, bool) else v for v in values.values()]
        await tx.execute(f"UPDATE domain_rules SET {assignments}, updated_at = ? WHERE id = ?", (*params, now, rule_id))
    else:
        await tx.execute("UPDATE domain_rules SET updated_at = ? WHERE id = ?", (now, rule_id))
    found = await tx.fetchone("SELECT * FROM domain_rules WHERE id = ?", (rule_id,))
    return _rule(found)


async def rule_by_id(db: Reader, rule_id: int) -> DomainRule | None:
    row = await db.fetchone("SELECT * FROM domain_rules WHERE id = ?", (rule_id,))
    return None if row is None else _rule(row)


async def delete_rule(tx: Tx, domain: str, kind: str | None = None) -> int:
    if kind is None:
        return await tx.execute("DELETE FROM domain_rules WHERE domain = ?", (domain,))
    return await tx.execute("DELETE FROM domain_rules WHERE domain = ? AND kind = ?", (domain, kind))


# -- the boundary log ------------------------------------------------------------------------------------

class LogEntry(msgspec.Struct, kw_only=True):
    id: int
    at: str
    direction: str
    event: str
    domain: str
    actor: str | None
    activity_type: str | None
    outcome: str
    reason: str | None


def entry(direction: str, event: str, domain: str, outcome: str, *, actor: str | None = None,
          activity_type: str | None = None, reason: str | None = None) -> LogEntry:
    return LogEntry(id=new_id(), at=now_iso(), direction=direction, event=event, domain=domain, actor=actor,
                    activity_type=activity_type, outcome=outcome, reason=reason)


async def append(tx: Tx, entries: Iterable[LogEntry]) -> None:
    await tx.executemany(
        "INSERT INTO boundary_log (id, at, direction, event, domain, actor, activity_type, outcome, reason)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(e.id, e.at, e.direction, e.event, e.domain, e.actor, e.activity_type, e.outcome, e.reason) for e in entries])


async def read_log(db: Reader, domain: str | None, since: str | None, limit: int, after_id: int = 0) -> list[LogEntry]:
    sql = "SELECT id, at, direction, event, domain, actor, activity_type, outcome, reason FROM boundary_log WHERE id > ?"
    params: list[Any] = [after_id]
    if domain:
        sql += " AND (domain = ? OR domain LIKE ?)"
        params.extend([domain, f"%.{domain}"])
    if since:
        sql += " AND at >= ?"
        params.append(since)
    rows = await db.fetchall(sql + " ORDER BY id LIMIT ?", [*params, limit])
    return [LogEntry(**dict(r)) for r in rows]


async def prune_log(tx: Tx, before: str) -> int:
    return await tx.execute("DELETE FROM boundary_log WHERE at < ?", (before,))


# -- suspension ------------------------------------------------------------------------------------------

async def domain_account_ids(db: Reader, domain: str, include_subdomains: bool) -> list[int]:
    if include_subdomains:
        rows = await db.fetchall("SELECT id FROM accounts WHERE domain = ? OR domain LIKE ?", (domain, f"%.{domain}"))
    else:
        rows = await db.fetchall("SELECT id FROM accounts WHERE domain = ?", (domain,))
    return [r[0] for r in rows]


async def purge_account(tx: Tx, account_id: int) -> None:
    """Sever a remote account's follows both ways and drop its cached posts (suspension)."""
    for table in ("follows", "follow_requests"):
        rows = await tx.fetchall(f"SELECT account_id, target_account_id FROM {table} WHERE account_id = ?1"
                                 f" OR target_account_id = ?1", (account_id,))
        await tx.execute(f"DELETE FROM {table} WHERE account_id = ?1 OR target_account_id = ?1", (account_id,))
        if table == "follows":
            for follower, target in rows:
                await relations.move_follow_counts(tx, follower, target, -1)
    await tx.execute("DELETE FROM home_feed WHERE status_id IN (SELECT id FROM statuses WHERE account_id = ?)",
                     (account_id,))
    await tx.execute("DELETE FROM notifications WHERE from_account_id = ?", (account_id,))
    await tx.execute("DELETE FROM statuses WHERE account_id = ?", (account_id,))
    await tx.execute("UPDATE accounts SET suspended = 1 WHERE id = ?", (account_id,))


async def pending_deliveries_to(tx: Tx, domain: str) -> None:
    await tx.execute("UPDATE deliveries SET state = 'failed', last_error = 'domain suspended' WHERE state = 'pending'"
                     " AND (host = ? OR host LIKE ? OR host LIKE ?)", (domain, f"%.{domain}", f"{domain}:%"))

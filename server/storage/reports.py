"""Reports against accounts, kept for the moderators."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from server.domain.records import Report
from server.ports import Reader, Tx
from server.storage.dialect import marks

_COLS = ("id, account_id, target_account_id, category, comment, forward, rule_ids, uri, action_taken_at,"
         " created_at, updated_at")


async def insert(tx: Tx, report: Report) -> None:
    await tx.execute(
        f"INSERT INTO reports ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (report.id, report.account_id, report.target_account_id, report.category, report.comment,
         int(report.forward), msgspec.json.encode(report.rule_ids).decode(), report.uri, report.action_taken_at,
         report.created_at, report.updated_at))
    await tx.executemany("INSERT INTO report_statuses (report_id, status_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                         [(report.id, s) for s in report.status_ids])


async def get_many(db: Reader, ids: Iterable[int]) -> dict[int, Report]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = await db.fetchall(f"SELECT {_COLS} FROM reports WHERE id IN ({marks(len(wanted))})", wanted)
    statuses = await db.fetchall(
        f"SELECT report_id, status_id FROM report_statuses WHERE report_id IN ({marks(len(wanted))})"
        " ORDER BY status_id", wanted)
    by_report: dict[int, list[int]] = {}
    for r in statuses:
        by_report.setdefault(r[0], []).append(r[1])
    out = {}
    for r in rows:
        data = dict(r)
        data["rule_ids"] = msgspec.json.decode(data["rule_ids"])
        data["status_ids"] = by_report.get(r["id"], [])
        out[r["id"]] = Report(**data)
    return out


async def get(db: Reader, report_id: int) -> Report | None:
    return (await get_many(db, [report_id])).get(report_id)


async def moderator_ids(db: Reader) -> list[int]:
    """Local users who handle reports: the admins who can still sign in."""
    rows = await db.fetchall("SELECT account_id FROM users WHERE admin = 1 AND disabled = 0")
    return [r[0] for r in rows]


async def link_notification(tx: Tx, notification_id: int, report_id: int) -> None:
    await tx.execute("INSERT INTO report_notifications (notification_id, report_id) VALUES (?, ?)",
                     (notification_id, report_id))


async def for_notifications(db: Reader, notification_ids: list[int]) -> dict[int, int]:
    """notification id → the report it is about."""
    if not notification_ids:
        return {}
    rows = await db.fetchall(
        f"SELECT notification_id, report_id FROM report_notifications WHERE notification_id IN"
        f" ({marks(len(notification_ids))})", notification_ids)
    return {r[0]: r[1] for r in rows}


async def existing_status_ids(db: Reader, account_id: int, status_ids: list[int]) -> set[int]:
    """Which of these ids are statuses (live or deleted) written by the account; boosts don't count."""
    if not status_ids:
        return set()
    rows = await db.fetchall(
        f"SELECT id FROM statuses WHERE account_id = ? AND reblog_of_id IS NULL AND id IN ({marks(len(status_ids))})",
        [account_id, *status_ids])
    return {r[0] for r in rows}


async def id_by_uri(db: Reader, uri: str) -> int | None:
    return await db.fetchval("SELECT id FROM reports WHERE uri = ?", (uri,))

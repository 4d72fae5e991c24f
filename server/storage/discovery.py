"""Follow suggestions and familiar followers."""

from __future__ import annotations

from typing import Any

from server.ids import now_iso
from server.ports import Reader, Tx

# A profile field named like this (any case) says which department someone works in.
DEPARTMENT_FIELD = "department"


def _field_name(db: Reader) -> str:
    """A profile field's name (fields are [name, value, value_html] arrays), trimmed and lower-cased."""
    return f"lower(trim({db.dialect.json_item_text('f.value', 0)}))"


def _field_value(db: Reader) -> str:
    """A profile field's value: its plain text if it has one, trimmed and lower-cased."""
    d = db.dialect
    return f"lower(trim(coalesce({d.json_item_text('f.value', 2)}, {d.json_item_text('f.value', 1)})))"


async def department_of(db: Reader, account_id: int) -> str | None:
    """The value of the account's Department profile field, lower-cased and trimmed, if it has one."""
    value = await db.fetchval(
        f"SELECT {_field_value(db)} FROM accounts a, {db.dialect.json_array_elements('a.fields')} f"
        f" WHERE a.id = ? AND {_field_name(db)} = ? LIMIT 1", (account_id, DEPARTMENT_FIELD))
    return value or None


# Local accounts one may be suggested (?1 is the viewer): not the viewer, not followed or requested,
# blocked either way, muted or dismissed, not suspended, disabled, unapproved or undiscoverable.
_CANDIDATES = (
    "accounts a JOIN users u ON u.account_id = a.id"
    " WHERE a.domain = '' AND a.id != ?1 AND a.suspended = 0 AND a.deleted_at IS NULL AND a.discoverable = 1"
    "   AND u.disabled = 0 AND u.approved = 1"
    "   AND a.id NOT IN (SELECT target_account_id FROM follows WHERE account_id = ?1)"
    "   AND a.id NOT IN (SELECT target_account_id FROM follow_requests WHERE account_id = ?1)"
    "   AND a.id NOT IN (SELECT target_account_id FROM blocks WHERE account_id = ?1)"
    "   AND a.id NOT IN (SELECT account_id FROM blocks WHERE target_account_id = ?1)"
    "   AND a.id NOT IN (SELECT target_account_id FROM mutes WHERE account_id = ?1)"
    "   AND a.id NOT IN (SELECT target_account_id FROM suggestion_dismissals WHERE account_id = ?1)")


async def suggestions(db: Reader, viewer_id: int, department: str | None, limit: int) -> list[tuple[int, bool]]:
    """(account id, same department?) for local accounts worth following: colleagues from the viewer's
    department first, then the most followed (see _CANDIDATES for who is left out). The most followed
    are read down an index of follower counts, stopping after the page; colleagues, only when the
    viewer has a department, by reading the local accounts' profile fields."""
    colleagues: list[int] = []
    if department:
        rows = await db.fetchall(
            f"SELECT a.id FROM {_CANDIDATES} AND EXISTS (SELECT 1 FROM {db.dialect.json_array_elements('a.fields')} f"
            f"   WHERE {_field_name(db)} = ?3 AND {_field_value(db)} = ?2)"
            " ORDER BY a.followers_count DESC, a.id LIMIT ?4", (viewer_id, department, DEPARTMENT_FIELD, limit))
        colleagues = [r[0] for r in rows]
    rows = await db.fetchall(f"SELECT a.id FROM {_CANDIDATES} ORDER BY a.followers_count DESC, a.id LIMIT ?2",
                             (viewer_id, limit + len(colleagues)))
    seen = set(colleagues)
    found = [(a, True) for a in colleagues] + [(r[0], False) for r in rows if r[0] not in seen]
    return found[:limit]


async def dismiss(tx: Tx, account_id: int, target_id: int) -> None:
    await tx.execute(
        "INSERT INTO suggestion_dismissals (account_id, target_account_id, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        (account_id, target_id, now_iso()))


async def familiar_followers(db: Reader, viewer_id: int, target_ids: list[int],
                             hidden: set[int]) -> dict[int, list[int]]:
    """target id → followers of the target whom the viewer follows (most recent follow first)."""
    out: dict[int, list[int]] = {t: [] for t in target_ids}
    if not target_ids:
        return out
    params: list[Any] = [viewer_id, *target_ids]
    hide = ""
    if hidden:
        hide = f" AND f.account_id NOT IN ({','.join('?' * len(hidden))})"
        params.extend(hidden)
    rows = await db.fetchall(
        "SELECT f.target_account_id, f.account_id FROM follows f"
        " JOIN follows mine ON mine.target_account_id = f.account_id AND mine.account_id = ?"
        " JOIN accounts a ON a.id = f.account_id AND a.suspended = 0 AND a.deleted_at IS NULL"
        f" WHERE f.target_account_id IN ({','.join('?' * len(target_ids))}){hide} ORDER BY f.id DESC", params)
    for r in rows:
        if r[1] != viewer_id:
            out[r[0]].append(r[1])
    return out

"""The people directory (/api/v1/directory): discoverable accounts, filtered by profile field."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from server.domain.records import Account, columns
from server.ports import Reader
from server.storage.accounts import _to_account
from server.storage.discovery import _field_name, _field_value

COLS = columns(Account, "a")


async def people(db: Reader, *, local: bool, order: str, offset: int, limit: int,
                 fields: Iterable[tuple[tuple[str, ...], str, bool]] = (), hidden: Iterable[int] = (),
                 name: str = "", following_of: int | None = None) -> list[Account]:
    """Accounts listed in the directory, as Mastodon lists them: discoverable, not suspended, silenced,
    deleted or moved, local ones with an approved and enabled user; group actors are not people (they
    are browsed through /api/v1/groups). `fields` are (field names, value, exact?) filters: an account
    matches when one of its profile fields with one of the names has the value (trimmed, any case),
    exactly or as a part. `name` narrows to usernames or display names containing it, `following_of` to
    the accounts that account follows. `order` is "active" (latest post first) or "new" (newest account first)."""
    d = db.dialect
    where = ["a.discoverable = 1", "a.suspended = 0", "a.deleted_at IS NULL", "a.moved_to_uri IS NULL",
             "a.actor_type <> 'Group'",
             "(a.domain <> '' OR EXISTS (SELECT 1 FROM users u WHERE u.account_id = a.id"
             " AND u.disabled = 0 AND u.approved = 1))",
             "NOT EXISTS (SELECT 1 FROM account_moderation am WHERE am.account_id = a.id"
             " AND am.silenced_at IS NOT NULL)"]
    params: list[Any] = []
    if local:
        where.append("a.domain = ''")
    hidden = list(hidden)
    if hidden:
        where.append(f"a.id NOT IN ({','.join('?' * len(hidden))})")
        params.extend(hidden)
    for names, value, exact in fields:
        test = f"{_field_value(db)} = ?" if exact else d.contains(_field_value(db), "?")
        where.append(f"EXISTS (SELECT 1 FROM {d.json_array_elements('a.fields')} f"
                     f" WHERE {_field_name(db)} IN ({','.join('?' * len(names))}) AND {test})")
        params.extend([*names, value.strip().lower()])
    if name.strip():
        like = "%" + name.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append("(lower(a.username) LIKE ? ESCAPE '\\' OR lower(a.display_name) LIKE ? ESCAPE '\\')")
        params.extend([like, like])
    if following_of is not None:
        where.append("a.id IN (SELECT target_account_id FROM follows WHERE account_id = ?)")
        params.append(following_of)
    # Both orders walk an index (accounts_last_status, the primary key) and stop after the page.
    ordering = "a.id DESC" if order == "new" else "a.last_status_id DESC NULLS LAST, a.id DESC"
    params.extend([limit, offset])
    rows = await db.fetchall(
        f"SELECT {COLS} FROM accounts a WHERE {' AND '.join(where)} ORDER BY {ordering} LIMIT ? OFFSET ?", params)
    return [_to_account(row) for row in rows]

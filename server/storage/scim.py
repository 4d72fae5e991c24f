"""SCIM provisioning: client tokens (hashed), provisioned users and groups, and SCIM filters compiled
to SQL with bound parameters (only attributes named here can be filtered on)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from server.domain.identity import ScimGroup, ScimToken, ScimUser
from server.domain.scim_filter import And, Compare, FilterError, Node, Not, Or, Present, ValuePath
from server.ids import new_id, now_iso
from server.ports import Reader, Tx
from server.storage.dialect import Dialect

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:"

# filter path → (SQL expression, compared case-insensitively)
_USER_COLUMNS: dict[str, tuple[str, bool]] = {
    "id": ("CAST(s.account_id AS TEXT)", False),
    "username": ("s.user_name", True),
    "externalid": ("s.external_id", False),
    "active": ("s.active", False),
    "displayname": ("a.display_name", True),
    "nickname": ("a.username", True),
    "name.givenname": ("s.given_name", True),
    "name.familyname": ("s.family_name", True),
    "emails": ("u.email", True),
    "emails.value": ("u.email", True),
    "title": ("s.title", True),
    ENTERPRISE + "department": ("s.department", True),
    ENTERPRISE + "manager": ("s.manager_id", False),
    ENTERPRISE + "manager.value": ("s.manager_id", False),
    "meta.created": ("s.created_at", False),
    "meta.lastmodified": ("s.updated_at", False),
}
# Inside emails[...]: the one address every user has is their work address and the primary one.
_EMAIL_ELEMENT: dict[str, tuple[str, bool]] = {"value": ("u.email", True), "type": ("'work'", True),
                                               "primary": ("1", False)}
_GROUP_COLUMNS: dict[str, tuple[str, bool]] = {
    "id": ("CAST(g.id AS TEXT)", False),
    "displayname": ("g.display_name", True),
    "externalid": ("g.external_id", False),
    "meta.created": ("g.created_at", False),
    "meta.lastmodified": ("g.updated_at", False),
}
_MEMBER = "EXISTS (SELECT 1 FROM scim_group_members m WHERE m.group_id = g.id AND CAST(m.account_id AS TEXT) {op} ?)"

USER_FROM = ("FROM scim_users s JOIN accounts a ON a.id = s.account_id JOIN users u ON u.account_id = s.account_id")
USER_SELECT = ("SELECT s.account_id, s.user_name, s.external_id, s.active, s.given_name, s.family_name, s.department,"
               " s.title, s.manager_id, s.created_at, s.updated_at, s.version, a.display_name, u.email, a.username ")


def _sql_value(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


def _compare(dialect: Dialect, expr: str, insensitive: bool, op: str, value: Any) -> tuple[str, list[Any]]:
    if value is None:
        if op == "eq":
            return f"{expr} IS NULL", []
        if op == "ne":
            return f"{expr} IS NOT NULL", []
        raise FilterError(f"{op} cannot compare with null")
    text_value = isinstance(value, str)
    left, right = (f"lower({expr})", "lower(CAST(? AS TEXT))") if insensitive and text_value else (expr, "?")
    if op in ("co", "sw", "ew") and not text_value:
        raise FilterError(f"{op} needs a string")
    sql = {
        "eq": f"{left} = {right}",
        "ne": f"({expr} IS NULL OR {left} != {right})",
        "co": dialect.contains(left, right),
        "sw": f"substr({left}, 1, length(CAST(? AS TEXT))) = {right}",
        "ew": dialect.ends_with(left, right),
        "gt": f"{left} > {right}", "ge": f"{left} >= {right}", "lt": f"{left} < {right}", "le": f"{left} <= {right}",
    }[op]
    args = [value, value] if op == "sw" else [value, value, value] if op == "ew" else [_sql_value(value)]
    return sql, args


def _column(columns: dict[str, tuple[str, bool]], path: str) -> tuple[str, bool]:
    if path not in columns:
        raise FilterError(f"cannot filter on the attribute {path!r}")
    return columns[path]


def compile_users(dialect: Dialect, node: Node) -> tuple[str, list[Any]]:
    """A filter on Users as a WHERE clause over `USER_FROM`."""
    return _compile(dialect, node, _USER_COLUMNS, "users")


def compile_groups(dialect: Dialect, node: Node) -> tuple[str, list[Any]]:
    return _compile(dialect, node, _GROUP_COLUMNS, "groups")


def _compile(dialect: Dialect, node: Node, columns: dict[str, tuple[str, bool]], kind: str) -> tuple[str, list[Any]]:
    match node:
        case And(left=left, right=right) | Or(left=left, right=right):
            a_sql, a_args = _compile(dialect, left, columns, kind)
            b_sql, b_args = _compile(dialect, right, columns, kind)
            return f"({a_sql} {'AND' if isinstance(node, And) else 'OR'} {b_sql})", a_args + b_args
        case Not(inner=inner):
            sql, args = _compile(dialect, inner, columns, kind)
            return f"NOT ({sql})", args
        case Present(path=path):
            if kind == "groups" and path in ("members", "members.value"):
                return "EXISTS (SELECT 1 FROM scim_group_members m WHERE m.group_id = g.id)", []
            expr, _ = _column(columns, path)
            return f"({expr} IS NOT NULL AND {expr} != '')", []
        case Compare(path=path, op=op, value=value):
            if kind == "groups" and path in ("members", "members.value"):
                if op not in ("eq", "ne"):
                    raise FilterError("members can only be compared with eq or ne")
                sql = _MEMBER.format(op="=")
                return (sql if op == "eq" else f"NOT {sql}"), [str(value)]
            expr, insensitive = _column(columns, path)
            return _compare(dialect, expr, insensitive, op, value)
        case ValuePath(path=path, inner=inner):
            if kind == "users" and path == "emails":
                return _compile(dialect, inner, _EMAIL_ELEMENT, kind)
            if kind == "groups" and path == "members":
                return _members_path(inner)
            raise FilterError(f"cannot filter inside {path!r}")
    raise FilterError("unsupported filter")


def _members_path(inner: Node) -> tuple[str, list[Any]]:
    if isinstance(inner, Compare) and inner.path == "value" and inner.op == "eq":
        return _MEMBER.format(op="="), [str(inner.value)]
    raise FilterError("only members[value eq \"…\"] is supported")


# -- tokens -------------------------------------------------------------------------------------------------

async def insert_token(tx: Tx, name: str, token_hash: str) -> ScimToken:
    token = ScimToken(id=new_id(), name=name, created_at=now_iso(), last_used_at=None, revoked_at=None)
    await tx.execute("INSERT INTO scim_tokens (id, name, token_hash, created_at) VALUES (?, ?, ?, ?)",
                     (token.id, name, token_hash, token.created_at))
    return token


async def token_by_hash(db: Reader, token_hash: str) -> ScimToken | None:
    row = await db.fetchone("SELECT id, name, created_at, last_used_at, revoked_at FROM scim_tokens"
                            " WHERE token_hash = ? AND revoked_at IS NULL", (token_hash,))
    return None if row is None else ScimToken(**dict(row))


async def touch_token(tx: Tx, token_id: int) -> None:
    await tx.execute("UPDATE scim_tokens SET last_used_at = ? WHERE id = ?", (now_iso(), token_id))


async def tokens(db: Reader) -> list[ScimToken]:
    rows = await db.fetchall("SELECT id, name, created_at, last_used_at, revoked_at FROM scim_tokens ORDER BY id")
    return [ScimToken(**dict(r)) for r in rows]


async def revoke_token(tx: Tx, token_id: int) -> ScimToken | None:
    row = await tx.fetchone("SELECT id, name, created_at, last_used_at, revoked_at FROM scim_tokens WHERE id = ?"
                            " AND revoked_at IS NULL", (token_id,))
    if row is None:
        return None
    await tx.execute("UPDATE scim_tokens SET revoked_at = ? WHERE id = ?", (now_iso(), token_id))
    return ScimToken(**dict(row))


# -- users ----------------------------------------------------------------------------------------------------

def _user(row: Any) -> ScimUser:
    data = dict(zip(row.keys(), row, strict=True))
    data["active"] = bool(data["active"])
    return ScimUser(**data)


async def insert_user(tx: Tx, user: ScimUser) -> None:
    await tx.execute(
        "INSERT INTO scim_users (account_id, user_name, external_id, active, given_name, family_name, department,"
        " title, manager_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (user.account_id, user.user_name, user.external_id, int(user.active), user.given_name, user.family_name,
         user.department, user.title, user.manager_id, user.created_at, user.updated_at))


async def update_user(tx: Tx, account_id: int, changes: dict[str, Any]) -> None:
    allowed = {"user_name", "external_id", "active", "given_name", "family_name", "department", "title",
               "manager_id"}
    assert set(changes) <= allowed, set(changes) - allowed
    assignments = "".join(f"{name} = ?, " for name in changes)
    await tx.execute(f"UPDATE scim_users SET {assignments}updated_at = ?, version = version + 1 WHERE account_id = ?",
                     (*(_sql_value(v) for v in changes.values()), now_iso(), account_id))


async def set_email(tx: Tx, account_id: int, email: str) -> None:
    await tx.execute("UPDATE users SET email = ? WHERE account_id = ?", (email, account_id))


async def user(db: Reader, account_id: int) -> ScimUser | None:
    row = await db.fetchone(f"{USER_SELECT}{USER_FROM} WHERE s.account_id = ? AND a.deleted_at IS NULL",
                            (account_id,))
    return None if row is None else _user(row)


async def find_users(db: Reader, found_by: Node | None, offset: int, limit: int) -> tuple[int, list[ScimUser]]:
    """Users matching the filter (raises FilterError for one that cannot be asked), one page of them."""
    where, args = compile_users(db.dialect, found_by) if found_by is not None else ("", [])
    condition = f"a.deleted_at IS NULL AND ({where})" if where else "a.deleted_at IS NULL"
    total = await db.fetchval(f"SELECT count(*) {USER_FROM} WHERE {condition}", args) or 0
    if limit <= 0:
        return total, []
    rows = await db.fetchall(f"{USER_SELECT}{USER_FROM} WHERE {condition} ORDER BY s.account_id LIMIT ? OFFSET ?",
                             [*args, limit, offset])
    return total, [_user(r) for r in rows]


async def user_name_taken(db: Reader, user_name: str, other_than: int | None = None) -> bool:
    return await db.fetchval(
        "SELECT 1 FROM scim_users s JOIN accounts a ON a.id = s.account_id WHERE lower(s.user_name) = lower(?)"
        " AND s.account_id != ? AND a.deleted_at IS NULL", (user_name, other_than or 0)) is not None


async def account_for_login(db: Reader, subject: str, login_name: str, email: str) -> int | None:
    """The provisioned account a first single sign-on belongs to: externalId is the provider's subject,
    or userName is the sign-in name (UPN, Okta login) or the e-mail address."""
    row = await db.fetchone(
        "SELECT s.account_id FROM scim_users s JOIN accounts a ON a.id = s.account_id WHERE a.deleted_at IS NULL"
        " AND (s.external_id = ? OR lower(s.user_name) = lower(?) OR lower(s.user_name) = lower(?))"
        " ORDER BY s.external_id = ? DESC LIMIT 1", (subject, login_name or "\x00", email or "\x00", subject))
    return None if row is None else row[0]


# -- groups -----------------------------------------------------------------------------------------------------

_GROUP_COLS = "g.id, g.display_name, g.external_id, g.created_at, g.updated_at, g.version"


async def insert_group(tx: Tx, display_name: str, external_id: str | None) -> int:
    group_id, now = new_id(), now_iso()
    await tx.execute("INSERT INTO scim_groups (id, display_name, external_id, created_at, updated_at)"
                     " VALUES (?, ?, ?, ?, ?)", (group_id, display_name, external_id, now, now))
    return group_id


async def update_group(tx: Tx, group_id: int, changes: dict[str, Any]) -> None:
    assert set(changes) <= {"display_name", "external_id"}
    assignments = "".join(f"{name} = ?, " for name in changes)
    await tx.execute(f"UPDATE scim_groups SET {assignments}updated_at = ?, version = version + 1 WHERE id = ?",
                     (*changes.values(), now_iso(), group_id))


async def delete_group(tx: Tx, group_id: int) -> list[int]:
    """Delete a group; returns its members' account ids."""
    members = [r[0] for r in await tx.fetchall("SELECT account_id FROM scim_group_members WHERE group_id = ?",
                                               (group_id,))]
    await tx.execute("DELETE FROM scim_groups WHERE id = ?", (group_id,))
    return members


async def group_name_taken(db: Reader, display_name: str, other_than: int | None = None) -> bool:
    return await db.fetchval("SELECT 1 FROM scim_groups WHERE lower(display_name) = lower(?) AND id != ?",
                             (display_name, other_than or 0)) is not None


async def _with_members(db: Reader, groups: list[ScimGroup]) -> list[ScimGroup]:
    if not groups:
        return groups
    ids = [g.id for g in groups]
    rows = await db.fetchall(
        "SELECT m.group_id, m.account_id, s.user_name FROM scim_group_members m"
        " LEFT JOIN scim_users s ON s.account_id = m.account_id"
        f" WHERE m.group_id IN ({','.join('?' * len(ids))}) ORDER BY m.account_id", ids)
    by_group: dict[int, list[tuple[int, str]]] = {}
    for r in rows:
        by_group.setdefault(r[0], []).append((r[1], r[2] or ""))
    for g in groups:
        g.members = by_group.get(g.id, [])
    return groups


async def group(db: Reader, group_id: int) -> ScimGroup | None:
    row = await db.fetchone(f"SELECT {_GROUP_COLS} FROM scim_groups g WHERE g.id = ?", (group_id,))
    if row is None:
        return None
    return (await _with_members(db, [ScimGroup(**dict(row))]))[0]


async def find_groups(db: Reader, found_by: Node | None, offset: int, limit: int,
                      with_members: bool = True) -> tuple[int, list[ScimGroup]]:
    where, args = compile_groups(db.dialect, found_by) if found_by is not None else ("", [])
    condition = where or "1=1"
    total = await db.fetchval(f"SELECT count(*) FROM scim_groups g WHERE {condition}", args) or 0
    if limit <= 0:
        return total, []
    rows = await db.fetchall(f"SELECT {_GROUP_COLS} FROM scim_groups g WHERE {condition} ORDER BY g.id LIMIT ? OFFSET ?",
                             [*args, limit, offset])
    groups = [ScimGroup(**dict(r)) for r in rows]
    return total, await _with_members(db, groups) if with_members else groups


async def existing_accounts(db: Reader, account_ids: Iterable[int]) -> set[int]:
    """Which of these ids are live local accounts (possible group members)."""
    ids = list(set(account_ids))
    if not ids:
        return set()
    rows = await db.fetchall(f"SELECT account_id FROM users u JOIN accounts a ON a.id = u.account_id"
                             f" WHERE u.account_id IN ({','.join('?' * len(ids))}) AND a.deleted_at IS NULL", ids)
    return {r[0] for r in rows}


async def add_members(tx: Tx, group_id: int, account_ids: Iterable[int]) -> None:
    await tx.executemany("INSERT INTO scim_group_members (group_id, account_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                         [(group_id, a) for a in account_ids])


async def remove_members(tx: Tx, group_id: int, account_ids: Iterable[int] | None = None) -> None:
    if account_ids is None:
        await tx.execute("DELETE FROM scim_group_members WHERE group_id = ?", (group_id,))
        return
    await tx.executemany("DELETE FROM scim_group_members WHERE group_id = ? AND account_id = ?",
                         [(group_id, a) for a in account_ids])


async def member_ids(db: Reader, group_id: int) -> set[int]:
    rows = await db.fetchall("SELECT account_id FROM scim_group_members WHERE group_id = ?", (group_id,))
    return {r[0] for r in rows}


async def group_keys_of(db: Reader, account_id: int) -> set[str]:
    """Display names and external ids of the SCIM groups an account is in (what role mappings name)."""
    rows = await db.fetchall("SELECT g.display_name, g.external_id FROM scim_group_members m"
                             " JOIN scim_groups g ON g.id = m.group_id WHERE m.account_id = ?", (account_id,))
    return {v for r in rows for v in (r[0], r[1]) if v}


async def touch_group(tx: Tx, group_id: int) -> None:
    await tx.execute("UPDATE scim_groups SET updated_at = ?, version = version + 1 WHERE id = ?",
                     (now_iso(), group_id))

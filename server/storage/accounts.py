"""Accounts and local users."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from server.ids import new_id, now_iso
from server.records import Account, User, columns


class Reader(Protocol):
    async def fetchone(self, sql: str, params: Any = ()) -> Any: ...
    async def fetchall(self, sql: str, params: Any = ()) -> list[Any]: ...
    async def fetchval(self, sql: str, params: Any = ()) -> Any: ...


ACCOUNT_COLS = columns(Account)
USER_COLS = columns(User)


def _to_account(row: Any) -> Account:
    # dict(sqlite3.Row) looks each column up by name, quadratic in the ~35 columns; zip is linear.
    return Account(**dict(zip(row.keys(), row, strict=True)))


def _account(row: Any) -> Account | None:
    return None if row is None else _to_account(row)


async def get(db: Reader, account_id: int) -> Account | None:
    return _account(await db.fetchone(f"SELECT {ACCOUNT_COLS} FROM accounts WHERE id = ?", (account_id,)))


async def get_many(db: Reader, ids: Iterable[int]) -> dict[int, Account]:
    ids = list(set(ids))
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = await db.fetchall(f"SELECT {ACCOUNT_COLS} FROM accounts WHERE id IN ({marks})", ids)
    return {row["id"]: _to_account(row) for row in rows}


async def by_username(db: Reader, username: str, domain: str = "") -> Account | None:
    return _account(await db.fetchone(
        f"SELECT {ACCOUNT_COLS} FROM accounts WHERE lower(username) = lower(?) AND domain = ?",
        (username, domain.lower())))


async def by_uri(db: Reader, uri: str) -> Account | None:
    return _account(await db.fetchone(f"SELECT {ACCOUNT_COLS} FROM accounts WHERE uri = ?", (uri,)))


async def private_key(db: Reader, account_id: int) -> str:
    return await db.fetchval("SELECT private_key_pem FROM accounts WHERE id = ?", (account_id,)) or ""


async def insert_local(tx: Any, *, username: str, email: str, password_hash: str, admin: bool,
                       approved: bool, base_url: str) -> int:
    account_id = new_id()
    now = now_iso()
    uri = f"{base_url}/users/{username}"
    await tx.execute(
        "INSERT INTO accounts (id, username, domain, uri, url, inbox_url, shared_inbox_url, outbox_url,"
        " followers_url, following_url, featured_url, key_id, created_at, updated_at)"
        " VALUES (?, ?, '', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (account_id, username, uri, f"{base_url}/@{username}", f"{uri}/inbox", f"{base_url}/inbox",
         f"{uri}/outbox", f"{uri}/followers", f"{uri}/following", f"{uri}/collections/featured",
         f"{uri}#main-key", now, now))
    await tx.execute(
        "INSERT INTO users (account_id, email, password_hash, admin, approved, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (account_id, email, password_hash, int(admin), int(approved), now))
    return account_id


async def set_keys(tx: Any, account_id: int, private_pem: str, public_pem: str) -> None:
    await tx.execute("UPDATE accounts SET private_key_pem = ?, public_key_pem = ? WHERE id = ? AND public_key_pem = ''",
                     (private_pem, public_pem, account_id))


async def update_profile(tx: Any, account_id: int, changes: dict[str, Any]) -> None:
    allowed = {"display_name", "note", "note_source", "fields", "locked", "bot", "discoverable",
               "avatar_url", "header_url"}
    assert set(changes) <= allowed, set(changes) - allowed
    if not changes:
        return
    assignments = ", ".join(f"{name} = ?" for name in changes)
    await tx.execute(f"UPDATE accounts SET {assignments}, updated_at = ? WHERE id = ?",
                     (*changes.values(), now_iso(), account_id))


async def adjust_counts(tx: Any, account_id: int, *, statuses: int = 0, followers: int = 0,
                        following: int = 0) -> None:
    await tx.execute(
        "UPDATE accounts SET statuses_count = max(0, statuses_count + ?), followers_count = max(0, followers_count + ?),"
        " following_count = max(0, following_count + ?) WHERE id = ?",
        (statuses, followers, following, account_id))


async def touch_last_status(tx: Any, account_id: int, date: str) -> None:
    await tx.execute("UPDATE accounts SET last_status_at = ? WHERE id = ?", (date, account_id))


async def search(db: Reader, query: str, limit: int, offset: int, *,
                 following_of: int | None = None) -> list[Account]:
    """Accounts whose username or display name starts with the query, whose display name contains it,
    or with a profile field whose value contains it (a Department, say). The exact username comes
    first, then username matches, local accounts and the most followed."""
    like = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    # ?1 query, ?2 'query%', ?3 '%query%'; plain ? after them number on from 4.
    params: list[Any] = [query, like + "%", "%" + like + "%"]
    restrict = ""
    if following_of is not None:
        restrict += " AND id IN (SELECT target_account_id FROM follows WHERE account_id = ?)"
        params.append(following_of)
    params.extend([limit, offset])
    rows = await db.fetchall(
        f"SELECT {ACCOUNT_COLS} FROM accounts WHERE suspended = 0 AND deleted_at IS NULL AND ("
        " lower(username) = lower(?1) OR username LIKE ?2 ESCAPE '\\' OR display_name LIKE ?3 ESCAPE '\\'"
        " OR EXISTS (SELECT 1 FROM json_each(CASE WHEN json_valid(fields) THEN fields ELSE '[]' END) f"
        "   WHERE coalesce(json_extract(f.value, '$[2]'), json_extract(f.value, '$[1]')) LIKE ?3 ESCAPE '\\'))"
        + restrict +
        " ORDER BY lower(username) = lower(?1) DESC, username LIKE ?2 ESCAPE '\\' DESC, domain = '' DESC,"
        " followers_count DESC, id LIMIT ? OFFSET ?", params)
    return [_to_account(r) for r in rows]


async def user(db: Reader, account_id: int) -> User | None:
    row = await db.fetchone(f"SELECT {USER_COLS} FROM users WHERE account_id = ?", (account_id,))
    return None if row is None else User(**dict(row))


async def user_by_login(db: Reader, login: str) -> tuple[User, Account] | None:
    """A local user by e-mail or username."""
    row = await db.fetchone(
        "SELECT u.account_id FROM users u JOIN accounts a ON a.id = u.account_id"
        " WHERE lower(u.email) = lower(?) OR (lower(a.username) = lower(?) AND a.domain = '')", (login, login))
    if row is None:
        return None
    found_user = await user(db, row[0])
    account = await get(db, row[0])
    return (found_user, account) if found_user and account else None


async def email_taken(db: Reader, email: str) -> bool:
    return await db.fetchval("SELECT 1 FROM users WHERE lower(email) = lower(?)", (email,)) is not None


async def list_users(db: Reader) -> list[tuple[User, Account]]:
    rows = await db.fetchall(f"SELECT {USER_COLS} FROM users ORDER BY account_id")
    users = [User(**dict(r)) for r in rows]
    accounts = await get_many(db, [u.account_id for u in users])
    return [(u, accounts[u.account_id]) for u in users if u.account_id in accounts]


async def set_password(tx: Any, account_id: int, password_hash: str) -> None:
    await tx.execute("UPDATE users SET password_hash = ? WHERE account_id = ?", (password_hash, account_id))


async def update_user_prefs(tx: Any, account_id: int, changes: dict[str, Any]) -> None:
    allowed = {"default_visibility", "default_sensitive", "default_language", "locale", "last_sign_in_at"}
    assert set(changes) <= allowed
    if changes:
        assignments = ", ".join(f"{name} = ?" for name in changes)
        await tx.execute(f"UPDATE users SET {assignments} WHERE account_id = ?", (*changes.values(), account_id))


async def count_local_users(db: Reader) -> int:
    return await db.fetchval("SELECT count(*) FROM users") or 0


async def count_local_statuses(db: Reader) -> int:
    return await db.fetchval("SELECT count(*) FROM statuses WHERE local = 1 AND deleted_at IS NULL") or 0


async def by_profile_url(db: Reader, url: str) -> Account | None:
    return _account(await db.fetchone(f"SELECT {ACCOUNT_COLS} FROM accounts WHERE url = ? AND domain = ''", (url,)))


async def usage_counts(db: Reader) -> dict[str, int]:
    row = await db.fetchone(
        "SELECT (SELECT count(*) FROM users WHERE disabled = 0),"
        " (SELECT count(*) FROM users WHERE last_sign_in_at > strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-30 days')),"
        " (SELECT count(*) FROM users WHERE last_sign_in_at > strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-180 days')),"
        " (SELECT count(*) FROM statuses WHERE local = 1 AND deleted_at IS NULL)")
    return {"users": row[0], "active_month": row[1], "active_halfyear": row[2], "posts": row[3]}


async def first_admin_id(db: Reader) -> int | None:
    return await db.fetchval("SELECT account_id FROM users WHERE admin = 1 ORDER BY account_id LIMIT 1")


async def known_domains(db: Reader) -> list[str]:
    return [r[0] for r in await db.fetchall("SELECT DISTINCT domain FROM accounts WHERE domain != '' ORDER BY domain")]

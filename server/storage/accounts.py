"""Accounts and local users."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from server.domain.enums import Visibility
from server.domain.records import Account, User, columns
from server.ids import iso, new_id, now_iso
from server.ports import Reader, Row, Tx

ACCOUNT_COLS = columns(Account)
USER_COLS = columns(User)


def _to_account(row: Any) -> Account:
    """An account from a row of `{ACCOUNT_COLS}` (or `columns(Account, alias)`): the fields in order."""
    return Account(*row)


def _to_user(row: Row) -> User:
    user = User(**dict(row))
    user.default_visibility = Visibility(user.default_visibility)
    return user


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


async def get_many_versioned(db: Reader, ids: Iterable[int]) -> dict[int, tuple[int, Account]]:
    """account id → (its version, the account), read in one statement so the record is at least as new
    as the version (see schema/sqlite/0037_render_versions.sql)."""
    ids = list(set(ids))
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = await db.fetchall(f"SELECT version, {ACCOUNT_COLS} FROM accounts WHERE id IN ({marks})", ids)
    out = {}
    for row in rows:
        values = tuple(row)
        out[values[1]] = (values[0], Account(*values[1:]))  # the columns are the fields, in order
    return out


async def by_username(db: Reader, username: str, domain: str = "") -> Account | None:
    return _account(await db.fetchone(
        f"SELECT {ACCOUNT_COLS} FROM accounts WHERE lower(username) = lower(?) AND domain = ?",
        (username, domain.lower())))


async def by_uri(db: Reader, uri: str) -> Account | None:
    return _account(await db.fetchone(f"SELECT {ACCOUNT_COLS} FROM accounts WHERE uri = ?", (uri,)))


async def private_key(db: Reader, account_id: int) -> str:
    return await db.fetchval("SELECT private_key_pem FROM accounts WHERE id = ?", (account_id,)) or ""


async def insert_local(tx: Tx, *, username: str, email: str, password_hash: str, admin: bool,
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


async def set_keys(tx: Tx, account_id: int, private_pem: str, public_pem: str) -> None:
    await tx.execute("UPDATE accounts SET private_key_pem = ?, public_key_pem = ? WHERE id = ? AND public_key_pem = ''",
                     (private_pem, public_pem, account_id))


async def update_profile(tx: Tx, account_id: int, changes: dict[str, Any]) -> None:
    allowed = {"display_name", "note", "note_source", "fields", "locked", "bot", "discoverable",
               "avatar_url", "header_url"}
    assert set(changes) <= allowed, set(changes) - allowed
    if not changes:
        return
    assignments = ", ".join(f"{name} = ?" for name in changes)
    await tx.execute(f"UPDATE accounts SET {assignments}, updated_at = ? WHERE id = ?",
                     (*changes.values(), now_iso(), account_id))


async def adjust_counts(tx: Tx, account_id: int, *, statuses: int = 0, followers: int = 0,
                        following: int = 0) -> None:
    at_least_0 = tx.dialect.greatest
    await tx.execute(
        f"UPDATE accounts SET statuses_count = {at_least_0('0', 'statuses_count + ?')},"
        f" followers_count = {at_least_0('0', 'followers_count + ?')},"
        f" following_count = {at_least_0('0', 'following_count + ?')} WHERE id = ?",
        (statuses, followers, following, account_id))


async def count_posts(tx: Tx, account_id: int, count: int, last_status_id: int, date: str) -> None:
    """The account posted (or boosted) `count` statuses, the latest `last_status_id` on `date`: its
    statuses count, and its latest post, by which the directory lists it. Ids are time-ordered, so the
    larger one is the later post. One statement (each update of an account row also advances its
    render version through a trigger and tells every process to drop its rendering)."""
    at_least_0 = tx.dialect.greatest
    await tx.execute(
        f"UPDATE accounts SET statuses_count = {at_least_0('0', 'statuses_count + ?')}, last_status_at = ?,"
        f" last_status_id = {at_least_0('coalesce(last_status_id, 0)', '?')} WHERE id = ?",
        (count, date, last_status_id, account_id))


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
    # LIKE ignores (ASCII) case on SQLite only; comparing lower() of both sides does so on both engines.
    d = db.dialect
    field_value = f"coalesce({d.json_item_text('f.value', 2)}, {d.json_item_text('f.value', 1)})"
    rows = await db.fetchall(
        f"SELECT {ACCOUNT_COLS} FROM accounts WHERE suspended = 0 AND deleted_at IS NULL AND ("
        " lower(username) = lower(?1) OR lower(username) LIKE lower(?2) ESCAPE '\\'"
        " OR lower(display_name) LIKE lower(?3) ESCAPE '\\'"
        f" OR EXISTS (SELECT 1 FROM {d.json_array_elements('fields')} f"
        f"   WHERE lower({field_value}) LIKE lower(?3) ESCAPE '\\'))"
        + restrict +
        " ORDER BY lower(username) = lower(?1) DESC, lower(username) LIKE lower(?2) ESCAPE '\\' DESC,"
        " domain = '' DESC, followers_count DESC, id LIMIT ? OFFSET ?", params)
    return [_to_account(r) for r in rows]


async def user(db: Reader, account_id: int) -> User | None:
    row = await db.fetchone(f"SELECT {USER_COLS} FROM users WHERE account_id = ?", (account_id,))
    return None if row is None else _to_user(row)


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
    users = [_to_user(r) for r in rows]
    accounts = await get_many(db, [u.account_id for u in users])
    return [(u, accounts[u.account_id]) for u in users if u.account_id in accounts]


async def set_password(tx: Tx, account_id: int, password_hash: str) -> None:
    await tx.execute("UPDATE users SET password_hash = ? WHERE account_id = ?", (password_hash, account_id))


async def update_user_prefs(tx: Tx, account_id: int, changes: dict[str, Any]) -> None:
    allowed = {"default_visibility", "default_sensitive", "default_language", "locale", "last_sign_in_at"}
    assert set(changes) <= allowed
    if changes:
        assignments = ", ".join(f"{name} = ?" for name in changes)
        await tx.execute(f"UPDATE users SET {assignments} WHERE account_id = ?", (*changes.values(), account_id))


async def count_local_users(db: Reader) -> int:
    return await db.fetchval("SELECT count(*) FROM users") or 0


# Local posts not deleted, boosts included, from the authors' counters (kept in the transaction of every
# post, boost and deletion): counting the statuses table itself read all of it, 0.3 s a call at 1,000,000
# statuses, on every /api/v1/instance (each app's launch) and NodeInfo fetch.
_LOCAL_POSTS = "SELECT coalesce(sum(statuses_count), 0) FROM accounts WHERE domain = ''"


async def count_local_statuses(db: Reader) -> int:
    return await db.fetchval(_LOCAL_POSTS) or 0


async def by_profile_url(db: Reader, url: str) -> Account | None:
    return _account(await db.fetchone(f"SELECT {ACCOUNT_COLS} FROM accounts WHERE url = ? AND domain = ''", (url,)))


async def usage_counts(db: Reader) -> dict[str, int]:
    row = await db.fetchone(
        "SELECT (SELECT count(*) FROM users WHERE disabled = 0),"
        " (SELECT count(*) FROM users WHERE last_sign_in_at > ?),"
        " (SELECT count(*) FROM users WHERE last_sign_in_at > ?),"
        f" ({_LOCAL_POSTS})", (days_ago(30), days_ago(180)))
    assert row is not None  # aggregates always answer one row
    return {"users": row[0], "active_month": row[1], "active_halfyear": row[2], "posts": row[3]}


async def active_users(db: Reader, days: int) -> int:
    """Local users who signed in within the last `days` days."""
    return await db.fetchval("SELECT count(*) FROM users WHERE last_sign_in_at > ?", (days_ago(days),)) or 0


def days_ago(days: int) -> str:
    return iso(datetime.now(UTC) - timedelta(days=days))


async def first_admin_id(db: Reader) -> int | None:
    return await db.fetchval("SELECT account_id FROM users WHERE admin = 1 ORDER BY account_id LIMIT 1")


async def known_domains(db: Reader) -> list[str]:
    return [r[0] for r in await db.fetchall("SELECT DISTINCT domain FROM accounts WHERE domain != '' ORDER BY domain")]

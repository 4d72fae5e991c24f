"""Roles, links to identity providers, sign-ins in progress, single-sign-on sessions, moderation state
and the account lifecycle (suspension, deletion)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from server.domain.identity import Identity, Moderation, Role
from server.domain.records import columns
from server.ids import new_id, now_iso
from server.ports import Reader, Row, Tx
from server.storage.dialect import marks

IDENTITY_COLS = columns(Identity)


# -- roles ----------------------------------------------------------------------------------------------

# Users made with the admin flag alone (`create-user --admin`, the development bootstrap) are admins.
ROLE = "CASE WHEN admin = 1 THEN 'admin' ELSE role END"

async def role_of(db: Reader, account_id: int) -> Role | None:
    value = await db.fetchval(f"SELECT {ROLE} FROM users WHERE account_id = ?", (account_id,))
    return None if value is None else Role(value)


async def roles_of(db: Reader, account_ids: Iterable[int]) -> dict[int, Role]:
    ids = list(set(account_ids))
    if not ids:
        return {}
    rows = await db.fetchall(f"SELECT account_id, {ROLE} FROM users WHERE account_id IN ({marks(len(ids))})", ids)
    return {r[0]: Role(r[1]) for r in rows}


async def set_role(tx: Tx, account_id: int, role: Role) -> None:
    await tx.execute("UPDATE users SET role = ?, admin = ? WHERE account_id = ?",
                     (role.value, int(role is Role.ADMIN), account_id))


# -- links to providers -----------------------------------------------------------------------------------

def _identity(row: Row | None) -> Identity | None:
    return None if row is None else Identity(**dict(row))


async def identity_by_subject(db: Reader, issuer: str, subject: str) -> Identity | None:
    return _identity(await db.fetchone(f"SELECT {IDENTITY_COLS} FROM identities WHERE issuer = ? AND subject = ?",
                                       (issuer, subject)))


async def identity_by_id(db: Reader, identity_id: int) -> Identity | None:
    return _identity(await db.fetchone(f"SELECT {IDENTITY_COLS} FROM identities WHERE id = ?", (identity_id,)))


async def identities_of(db: Reader, account_ids: Iterable[int]) -> dict[int, list[Identity]]:
    ids = list(set(account_ids))
    if not ids:
        return {}
    rows = await db.fetchall(f"SELECT {IDENTITY_COLS} FROM identities WHERE account_id IN ({marks(len(ids))})"
                             " ORDER BY id", ids)
    out: dict[int, list[Identity]] = {}
    for row in rows:
        out.setdefault(row["account_id"], []).append(Identity(**dict(row)))
    return out


async def insert_identity(tx: Tx, account_id: int, issuer: str, subject: str, email: str | None) -> Identity:
    now = now_iso()
    identity = Identity(id=new_id(), account_id=account_id, issuer=issuer, subject=subject, email=email,
                        created_at=now, last_login_at=now)
    await tx.execute(f"INSERT INTO identities ({IDENTITY_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (identity.id, account_id, issuer, subject, email, now, now))
    return identity


async def touch_identity(tx: Tx, identity_id: int, email: str | None) -> None:
    await tx.execute("UPDATE identities SET last_login_at = ?, email = coalesce(?, email) WHERE id = ?",
                     (now_iso(), email, identity_id))


async def delete_identities(tx: Tx, account_id: int) -> list[Identity]:
    rows = await tx.fetchall(f"SELECT {IDENTITY_COLS} FROM identities WHERE account_id = ?", (account_id,))
    await tx.execute("DELETE FROM identities WHERE account_id = ?", (account_id,))
    await tx.execute("DELETE FROM web_sessions WHERE account_id = ? AND identity_id IS NOT NULL", (account_id,))
    return [Identity(**dict(r)) for r in rows]


# -- sign-ins in progress (single use) --------------------------------------------------------------------

async def insert_login(tx: Tx, state_hash: str, nonce: str, code_verifier: str, return_to: str, ttl: float) -> None:
    now = time.time()
    await tx.execute("DELETE FROM oidc_logins WHERE expires_at < ?", (now,))
    await tx.execute("INSERT INTO oidc_logins (state_hash, nonce, code_verifier, return_to, expires_at)"
                     " VALUES (?, ?, ?, ?, ?)", (state_hash, nonce, code_verifier, return_to, now + ttl))


async def take_login(tx: Tx, state_hash: str) -> tuple[str, str, str] | None:
    """(nonce, code verifier, return path) of a live sign-in, deleted so that it works once."""
    row = await tx.fetchone("SELECT nonce, code_verifier, return_to, expires_at FROM oidc_logins WHERE state_hash = ?",
                            (state_hash,))
    if row is None:
        return None
    await tx.execute("DELETE FROM oidc_logins WHERE state_hash = ?", (state_hash,))
    if row["expires_at"] < time.time():
        return None
    return row["nonce"], row["code_verifier"], row["return_to"]


async def insert_signup(tx: Tx, id_hash: str, issuer: str, subject: str, claims: str, return_to: str,
                        ttl: float) -> None:
    now = time.time()
    await tx.execute("DELETE FROM oidc_signups WHERE expires_at < ?", (now,))
    await tx.execute("INSERT INTO oidc_signups (id_hash, issuer, subject, claims, return_to, expires_at)"
                     " VALUES (?, ?, ?, ?, ?, ?)", (id_hash, issuer, subject, claims, return_to, now + ttl))


async def signup(db: Reader, id_hash: str) -> tuple[str, str, str, str] | None:
    """(issuer, subject, claims JSON, return path) of a first sign-in waiting for a username."""
    row = await db.fetchone("SELECT issuer, subject, claims, return_to FROM oidc_signups WHERE id_hash = ?"
                            " AND expires_at > ?", (id_hash, time.time()))
    return None if row is None else (row[0], row[1], row[2], row[3])


async def delete_signup(tx: Tx, id_hash: str) -> None:
    await tx.execute("DELETE FROM oidc_signups WHERE id_hash = ?", (id_hash,))


# -- web sessions ------------------------------------------------------------------------------------------

async def insert_session(tx: Tx, id_hash: str, account_id: int, identity_id: int | None, ttl: float) -> None:
    await tx.execute("DELETE FROM web_sessions WHERE expires_at < ?", (time.time(),))
    await tx.execute("INSERT INTO web_sessions (id_hash, account_id, expires_at, identity_id) VALUES (?, ?, ?, ?)",
                     (id_hash, account_id, time.time() + ttl, identity_id))


async def session(db: Reader, id_hash: str) -> tuple[int, int | None] | None:
    """(account id, identity id) of a live web session."""
    row = await db.fetchone("SELECT account_id, identity_id FROM web_sessions WHERE id_hash = ? AND expires_at > ?",
                            (id_hash, time.time()))
    return None if row is None else (row[0], row[1])


async def delete_session(tx: Tx, id_hash: str) -> None:
    await tx.execute("DELETE FROM web_sessions WHERE id_hash = ?", (id_hash,))


# -- moderation state and lifecycle ------------------------------------------------------------------------

async def moderation_of(db: Reader, account_ids: Iterable[int]) -> dict[int, Moderation]:
    ids = list(set(account_ids))
    if not ids:
        return {}
    rows = await db.fetchall(
        "SELECT account_id, silenced_at, sensitized_at, suspended_at, suspension_origin FROM account_moderation"
        f" WHERE account_id IN ({marks(len(ids))})", ids)
    found = {r[0]: Moderation(**dict(r)) for r in rows}
    return {i: found.get(i, Moderation(account_id=i)) for i in ids}


async def set_moderation(tx: Tx, account_id: int, **changes: str | None) -> None:
    allowed = {"silenced_at", "sensitized_at", "suspended_at", "suspension_origin"}
    assert set(changes) <= allowed, set(changes) - allowed
    await tx.execute("INSERT INTO account_moderation (account_id) VALUES (?) ON CONFLICT DO NOTHING", (account_id,))
    assignments = ", ".join(f"{name} = ?" for name in changes)
    await tx.execute(f"UPDATE account_moderation SET {assignments} WHERE account_id = ?",
                     (*changes.values(), account_id))


async def set_suspended(tx: Tx, account_id: int, suspended: bool, origin: str | None) -> None:
    await tx.execute("UPDATE accounts SET suspended = ? WHERE id = ?", (int(suspended), account_id))
    await set_moderation(tx, account_id, suspended_at=now_iso() if suspended else None,
                         suspension_origin=origin if suspended else None)
    if suspended:
        await tx.execute("DELETE FROM web_sessions WHERE account_id = ?", (account_id,))


async def set_disabled(tx: Tx, account_id: int, disabled: bool) -> None:
    await tx.execute("UPDATE users SET disabled = ? WHERE account_id = ?", (int(disabled), account_id))
    if disabled:
        await tx.execute("DELETE FROM web_sessions WHERE account_id = ?", (account_id,))


async def set_approved(tx: Tx, account_id: int) -> None:
    await tx.execute("UPDATE users SET approved = 1 WHERE account_id = ?", (account_id,))


async def hide_posts(tx: Tx, account_id: int) -> None:
    """Hide the live posts of a suspended account, remembering which, so reactivation shows them again."""
    await tx.execute("INSERT INTO suspension_hidden (status_id, account_id)"
                     " SELECT id, account_id FROM statuses WHERE account_id = ? AND deleted_at IS NULL"
                     " ON CONFLICT DO NOTHING", (account_id,))
    await tx.execute("UPDATE statuses SET deleted_at = ? WHERE id IN"
                     " (SELECT status_id FROM suspension_hidden WHERE account_id = ?)", (now_iso(), account_id))


async def show_posts(tx: Tx, account_id: int) -> None:
    await tx.execute("UPDATE statuses SET deleted_at = NULL WHERE id IN"
                     " (SELECT status_id FROM suspension_hidden WHERE account_id = ?)", (account_id,))
    await tx.execute("DELETE FROM suspension_hidden WHERE account_id = ?", (account_id,))


async def scrub_deleted_local(tx: Tx, account_id: int) -> None:
    """What is left of a deleted local account: the row (its handle is never reused, and its key signs
    the `Delete` sent to other servers), without profile, sign-in, tokens or provider links."""
    await tx.execute("UPDATE accounts SET display_name = '', note = '', note_source = '', fields = '[]',"
                     " avatar_url = '', header_url = '', followers_count = 0, following_count = 0,"
                     " statuses_count = 0 WHERE id = ?", (account_id,))
    await tx.execute("UPDATE users SET disabled = 1, password_hash = '', email = ? WHERE account_id = ?",
                     (f"deleted-{account_id}@deleted.invalid", account_id))
    await tx.execute("UPDATE tokens SET revoked = 1 WHERE account_id = ?", (account_id,))
    for table in ("web_sessions", "identities", "scim_users", "scim_group_members", "suspension_hidden",
                  "push_subscriptions"):
        await tx.execute(f"DELETE FROM {table} WHERE account_id = ?", (account_id,))


async def delete_pending_user(tx: Tx, account_id: int) -> None:
    """A rejected sign-up: an account that never published anything goes entirely."""
    await tx.execute("DELETE FROM accounts WHERE id = ? AND domain = ''", (account_id,))


# -- the admin accounts list -----------------------------------------------------------------------------

async def admin_account_ids(db: Reader, *, origin: str | None = None, status: str | None = None,
                            role: str | None = None, username: str | None = None, display_name: str | None = None,
                            by_domain: str | None = None, email: str | None = None, max_id: int | None = None,
                            since_id: int | None = None, min_id: int | None = None, limit: int = 100) -> list[int]:
    where = ["a.actor_type != 'Application'"]
    args: list[Any] = []
    if origin == "local":
        where.append("a.domain = ''")
    elif origin == "remote":
        where.append("a.domain != ''")
    if status == "active":
        where.append("a.suspended = 0 AND a.deleted_at IS NULL AND coalesce(u.disabled, 0) = 0"
                     " AND coalesce(u.approved, 1) = 1")
    elif status == "pending":
        where.append("u.approved = 0 AND a.deleted_at IS NULL")
    elif status == "disabled":
        where.append("u.disabled = 1 AND a.deleted_at IS NULL")
    elif status == "silenced":
        where.append("m.silenced_at IS NOT NULL")
    elif status == "suspended":
        where.append("a.suspended = 1")
    if role == "staff":
        where.append("(u.role IN ('admin', 'moderator') OR u.admin = 1)")
    elif role in ("admin", "moderator", "user"):
        where.append(f"{ROLE.replace('admin = 1', 'u.admin = 1').replace('ELSE role', 'ELSE u.role')} = ?")
        args.append(role)
    if username:
        where.append("lower(a.username) LIKE lower(?) ESCAPE '\\'")
        args.append(_like(username) + "%")
    if display_name:
        where.append("a.display_name LIKE ? ESCAPE '\\'")
        args.append("%" + _like(display_name) + "%")
    if by_domain:
        where.append("a.domain = lower(?)")
        args.append(by_domain)
    if email:
        where.append("lower(u.email) LIKE lower(?) ESCAPE '\\'")
        args.append("%" + _like(email) + "%")
    order = "DESC"
    if max_id is not None:
        where.append("a.id < ?")
        args.append(max_id)
    if since_id is not None:
        where.append("a.id > ?")
        args.append(since_id)
    if min_id is not None:
        where.append("a.id > ?")
        args.append(min_id)
        order = "ASC"
    rows = await db.fetchall(
        "SELECT a.id FROM accounts a LEFT JOIN users u ON u.account_id = a.id"
        " LEFT JOIN account_moderation m ON m.account_id = a.id"
        f" WHERE {' AND '.join(where)} ORDER BY a.id {order} LIMIT ?", [*args, limit])
    ids = [r[0] for r in rows]
    return sorted(ids, reverse=True)


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def provider_refresh(db: Reader, identity_id: int) -> str | None:
    """The sealed refresh token the provider gave at the last sign-in through this link."""
    return await db.fetchval("SELECT sealed FROM identity_refresh_tokens WHERE identity_id = ?", (identity_id,))


async def set_provider_refresh(tx: Tx, identity_id: int, sealed: str | None) -> None:
    if sealed is None:
        await tx.execute("DELETE FROM identity_refresh_tokens WHERE identity_id = ?", (identity_id,))
        return
    await tx.execute("INSERT INTO identity_refresh_tokens (identity_id, sealed, updated_at) VALUES (?, ?, ?)"
                     " ON CONFLICT (identity_id) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
                     (identity_id, sealed, now_iso()))


async def silenced_for(db: Reader, sender_id: int, recipient_id: int) -> bool:
    """Moderators silenced the sender and the recipient does not follow them (one query)."""
    return await db.fetchone(
        "SELECT 1 FROM account_moderation m WHERE m.account_id = ? AND m.silenced_at IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM follows f WHERE f.account_id = ? AND f.target_account_id = ?)",
        (sender_id, recipient_id, sender_id)) is not None

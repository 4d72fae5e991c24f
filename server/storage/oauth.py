"""OAuth apps, authorisation codes, access tokens and web sessions. Secrets are stored hashed."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from server.domain.records import App, Token, columns
from server.ids import new_id, now_iso
from server.ports import Reader, Tx

APP_COLS = columns(App)
TOKEN_COLS = columns(Token)


async def insert_app(tx: Tx, *, name: str, website: str | None, client_id: str, client_secret_hash: str,
                     redirect_uris: str, scopes: str) -> App:
    app = App(id=new_id(), name=name, website=website, client_id=client_id,
              client_secret_hash=client_secret_hash, redirect_uris=redirect_uris, scopes=scopes,
              created_at=now_iso())
    await tx.execute(f"INSERT INTO apps ({APP_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     (app.id, app.name, app.website, app.client_id, app.client_secret_hash,
                      app.redirect_uris, app.scopes, app.created_at))
    return app


async def ensure_app(tx: Tx, *, name: str, website: str | None, client_id: str, client_secret_hash: str,
                     redirect_uris: str, scopes: str) -> App:
    """The app with this client id, inserted as given if there is none (also when several
    transactions ask at once)."""
    await tx.execute(f"INSERT INTO apps ({APP_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (client_id) DO NOTHING",
                     (new_id(), name, website, client_id, client_secret_hash, redirect_uris, scopes, now_iso()))
    app = await app_by_client_id(tx, client_id)
    assert app is not None  # inserted above, or there already
    return app


async def app_by_client_id(db: Reader, client_id: str) -> App | None:
    row = await db.fetchone(f"SELECT {APP_COLS} FROM apps WHERE client_id = ?", (client_id,))
    return None if row is None else App(**dict(row))


async def app_by_id(db: Reader, app_id: int) -> App | None:
    row = await db.fetchone(f"SELECT {APP_COLS} FROM apps WHERE id = ?", (app_id,))
    return None if row is None else App(**dict(row))


async def apps_by_ids(db: Reader, ids: Iterable[int]) -> dict[int, App]:
    ids = list(ids)
    if not ids:
        return {}
    rows = await db.fetchall(f"SELECT {APP_COLS} FROM apps WHERE id IN ({','.join('?' * len(ids))})", ids)
    return {row["id"]: App(**dict(row)) for row in rows}


async def insert_code(tx: Tx, *, code_hash: str, app_id: int, account_id: int, redirect_uri: str,
                      scopes: str, challenge: str | None, method: str | None, ttl: float = 600) -> None:
    await tx.execute(
        "INSERT INTO oauth_codes (code_hash, app_id, account_id, redirect_uri, scopes, code_challenge,"
        " code_challenge_method, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (code_hash, app_id, account_id, redirect_uri, scopes, challenge, method, time.time() + ttl))


async def take_code(tx: Tx, code_hash: str) -> Any:
    """Fetch and delete a code in one statement, so it can be used only once."""
    return await tx.fetchone("DELETE FROM oauth_codes WHERE code_hash = ? RETURNING *", (code_hash,))


async def insert_token(tx: Tx, *, token_hash: str, refresh_hash: str | None, app_id: int | None,
                       account_id: int | None, scopes: str) -> Token:
    token = Token(id=new_id(), app_id=app_id, account_id=account_id, scopes=scopes, created_at=now_iso())
    await tx.execute(
        "INSERT INTO tokens (id, token_hash, refresh_hash, app_id, account_id, scopes, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (token.id, token_hash, refresh_hash, app_id, account_id, scopes, token.created_at))
    return token


async def token_by_hash(db: Reader, token_hash: str) -> Token | None:
    row = await db.fetchone(f"SELECT {TOKEN_COLS} FROM tokens WHERE token_hash = ? AND revoked = 0", (token_hash,))
    return None if row is None else Token(**dict(row))


async def token_by_refresh(db: Reader, refresh_hash: str) -> Token | None:
    row = await db.fetchone(f"SELECT {TOKEN_COLS} FROM tokens WHERE refresh_hash = ? AND revoked = 0",
                            (refresh_hash,))
    return None if row is None else Token(**dict(row))


# A token's push subscription ends with the token (in the same transaction): nothing is pushed for a
# token that no longer works.

async def revoke_token(tx: Tx, token_id: int) -> None:
    await tx.execute("UPDATE tokens SET revoked = 1 WHERE id = ?", (token_id,))
    await tx.execute("DELETE FROM push_subscriptions WHERE token_id = ?", (token_id,))


async def account_of_token(db: Reader, token_hash: str, app_id: int) -> int | None:
    value = await db.fetchval("SELECT account_id FROM tokens WHERE (token_hash = ?1 OR refresh_hash = ?1) AND app_id = ?2",
                              (token_hash, app_id))
    return None if value is None else int(value)


async def revoke_by_hash(tx: Tx, token_hash: str, app_id: int) -> int:
    await tx.execute("DELETE FROM push_subscriptions WHERE token_id IN (SELECT id FROM tokens"
                     " WHERE (token_hash = ?1 OR refresh_hash = ?1) AND app_id = ?2)", (token_hash, app_id))
    return await tx.execute(
        "UPDATE tokens SET revoked = 1 WHERE (token_hash = ?1 OR refresh_hash = ?1) AND app_id = ?2",
        (token_hash, app_id))


async def revoke_all_for_account(tx: Tx, account_id: int) -> None:
    await tx.execute("UPDATE tokens SET revoked = 1 WHERE account_id = ?", (account_id,))
    await tx.execute("DELETE FROM push_subscriptions WHERE account_id = ?", (account_id,))


async def insert_session(tx: Tx, id_hash: str, account_id: int, ttl: float) -> None:
    await tx.execute("DELETE FROM web_sessions WHERE expires_at < ?", (time.time(),))
    await tx.execute("INSERT INTO web_sessions (id_hash, account_id, expires_at) VALUES (?, ?, ?)",
                     (id_hash, account_id, time.time() + ttl))


async def session_account(db: Reader, id_hash: str) -> int | None:
    return await db.fetchval("SELECT account_id FROM web_sessions WHERE id_hash = ? AND expires_at > ?",
                             (id_hash, time.time()))

"""OAuth apps, authorisation codes, access tokens and web sessions. Secrets are stored hashed."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from server.ids import new_id, now_iso
from server.records import App, Token, columns
from server.storage.accounts import Reader

APP_COLS = columns(App)
TOKEN_COLS = columns(Token)


async def insert_app(tx: Any, *, name: str, website: str | None, client_id: str, client_secret_hash: str,
                     redirect_uris: str, scopes: str) -> App:
    app = App(id=new_id(), name=name, website=website, client_id=client_id,
              client_secret_hash=client_secret_hash, redirect_uris=redirect_uris, scopes=scopes,
              created_at=now_iso())
    await tx.execute(f"INSERT INTO apps ({APP_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     (app.id, app.name, app.website, app.client_id, app.client_secret_hash,
                      app.redirect_uris, app.scopes, app.created_at))
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


async def insert_code(tx: Any, *, code_hash: str, app_id: int, account_id: int, redirect_uri: str,
                      scopes: str, challenge: str | None, method: str | None, ttl: float = 600) -> None:
    await tx.execute(
        "INSERT INTO oauth_codes (code_hash, app_id, account_id, redirect_uri, scopes, code_challenge,"
        " code_challenge_method, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (code_hash, app_id, account_id, redirect_uri, scopes, challenge, method, time.time() + ttl))


async def take_code(tx: Any, code_hash: str) -> Any:
    """Fetch and delete a code in one transaction, so it can be used only once."""
    row = await tx.fetchone("SELECT * FROM oauth_codes WHERE code_hash = ?", (code_hash,))
    if row is not None:
        await tx.execute("DELETE FROM oauth_codes WHERE code_hash = ?", (code_hash,))
    return row


async def insert_token(tx: Any, *, token_hash: str, refresh_hash: str | None, app_id: int | None,
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


async def revoke_token(tx: Any, token_id: int) -> None:
    await tx.execute("UPDATE tokens SET revoked = 1 WHERE id = ?", (token_id,))


async def revoke_by_hash(tx: Any, token_hash: str, app_id: int) -> int:
    return await tx.execute(
        "UPDATE tokens SET revoked = 1 WHERE (token_hash = ?1 OR refresh_hash = ?1) AND app_id = ?2",
        (token_hash, app_id))


async def revoke_all_for_account(tx: Any, account_id: int) -> None:
    await tx.execute("UPDATE tokens SET revoked = 1 WHERE account_id = ?", (account_id,))


async def insert_session(tx: Any, id_hash: str, account_id: int, ttl: float) -> None:
    await tx.execute("DELETE FROM web_sessions WHERE expires_at < ?", (time.time(),))
    await tx.execute("INSERT INTO web_sessions (id_hash, account_id, expires_at) VALUES (?, ?, ?)",
                     (id_hash, account_id, time.time() + ttl))


async def session_account(db: Reader, id_hash: str) -> int | None:
    return await db.fetchval("SELECT account_id FROM web_sessions WHERE id_hash = ? AND expires_at > ?",
                             (id_hash, time.time()))

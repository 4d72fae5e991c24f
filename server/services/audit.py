"""The audit log: who did what, when, from where. Every admin and security action records an entry in
the transaction of the action itself, so there is never an action without its entry or the reverse.

Entries never hold a secret: details whose key names a secret are refused outright (a programming
error, caught by the tests), and the entry is also written to the `crosstalk.audit` logger, so a SIEM
can read the JSON log lines as they happen.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

import msgspec

from server.domain.identity import AuditEntry
from server.ids import now_iso
from server.ports import Tx
from server.render.admin import audit_json
from server.state import State
from server.storage import audit as store

log = logging.getLogger("crosstalk.audit")
_SECRET_KEY = re.compile(r"password|secret|token|credential|code_verifier|nonce|cookie|authorization", re.I)
Detail = dict[str, str | int | bool | None | list[str]]


class Actor(msgspec.Struct, frozen=True, kw_only=True):
    """Who acted: a person (their username and account), a SCIM client, the admin CLI or the server."""

    name: str
    account_id: int | None = None
    address: str | None = None  # the client's address, for actions that came over HTTP

    def at(self, address: str | None) -> Actor:
        return Actor(name=self.name, account_id=self.account_id, address=address)


CLI = Actor(name="cli")
SYSTEM = Actor(name="system")


def person(username: str, account_id: int, address: str | None = None) -> Actor:
    return Actor(name=username, account_id=account_id, address=address)


def _checked(detail: Detail | None) -> str:
    detail = detail or {}
    for key in detail:
        if _SECRET_KEY.search(key):
            raise ValueError(f"audit details never hold secrets: {key!r}")
    return msgspec.json.encode(detail).decode()


async def record(tx: Tx, actor: Actor, action: str, *, target_type: str | None = None,
                 target_id: int | str | None = None, target: str | None = None, outcome: str = "ok",
                 detail: Detail | None = None) -> None:
    entry = AuditEntry(id=0, at=now_iso(), actor_id=actor.account_id, actor=actor.name, action=action,
                       target_type=target_type, target_id=None if target_id is None else str(target_id),
                       target=target, address=actor.address, outcome=outcome, detail=_checked(detail))
    await store.insert(tx, entry)
    tx.on_commit(lambda: log.info("audit", extra={"audit": audit_json(entry)}))


async def record_now(state: State, actor: Actor, action: str, *, target_type: str | None = None,
                     target_id: int | str | None = None, target: str | None = None, outcome: str = "ok",
                     detail: Detail | None = None) -> None:
    """An entry for something that has no transaction of its own (a refused sign-in)."""
    async with state.db.transaction() as tx:
        await record(tx, actor, action, target_type=target_type, target_id=target_id, target=target,
                     outcome=outcome, detail=detail)


async def entries(state: State, *, actor: str | None = None, action: str | None = None, since: str | None = None,
                  after_id: int = 0, before_id: int | None = None, limit: int = 100,
                  newest_first: bool = False) -> list[AuditEntry]:
    return await store.read(state.db, actor=actor, action=action, since=since, after_id=after_id,
                            before_id=before_id, limit=limit, newest_first=newest_first)


async def prune(state: State) -> int:
    """Drop entries older than the retention (periodic job)."""
    cutoff = datetime.now(UTC) - timedelta(days=max(1, state.settings.audit.retention_days))
    async with state.db.transaction() as tx:
        return await store.prune(tx, cutoff.strftime("%Y-%m-%dT%H:%M:%S.000Z"))

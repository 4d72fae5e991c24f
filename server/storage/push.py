"""Web Push storage: the instance's VAPID key, subscriptions (one per access token) and the push queue."""

from __future__ import annotations

import msgspec

from server.ids import now_iso
from server.ports import Reader, Tx
from server.storage.dialect import marks

# -- the VAPID key ------------------------------------------------------------------------------------


async def vapid_key(db: Reader) -> tuple[str, str] | None:
    """(private, public) in raw base64url, or None before the first start made them."""
    row = await db.fetchone("SELECT private_key, public_key FROM vapid_keys WHERE id = 1")
    return None if row is None else (row[0], row[1])


async def offer_vapid_key(tx: Tx, private_key: str, public_key: str) -> None:
    """Store this key pair unless another process stored one first (the caller reads back the winner)."""
    await tx.execute("INSERT INTO vapid_keys (id, private_key, public_key, created_at) VALUES (1, ?, ?, ?)"
                     " ON CONFLICT DO NOTHING", (private_key, public_key, now_iso()))


# -- subscriptions ------------------------------------------------------------------------------------


class Subscription(msgspec.Struct, kw_only=True):
    id: int
    token_id: int
    account_id: int
    endpoint: str
    key_p256dh: str
    key_auth: str
    standard: bool
    alerts: str  # JSON object
    policy: str
    sealed_token: str
    created_at: str
    updated_at: str


SUBSCRIPTION_COLS = ", ".join(Subscription.__struct_fields__)


def _subscription(row: object) -> Subscription:
    values = dict(row)  # type: ignore[call-overload]
    values["standard"] = bool(values["standard"])
    return Subscription(**values)


async def replace_subscription(tx: Tx, sub: Subscription) -> None:
    """Store the token's new subscription; the one it had before (if any) goes, as in Mastodon."""
    await tx.execute("DELETE FROM push_subscriptions WHERE token_id = ?", (sub.token_id,))
    await tx.execute(
        f"INSERT INTO push_subscriptions ({SUBSCRIPTION_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (sub.id, sub.token_id, sub.account_id, sub.endpoint, sub.key_p256dh, sub.key_auth, int(sub.standard),
         sub.alerts, sub.policy, sub.sealed_token, sub.created_at, sub.updated_at))


async def subscription_of_token(db: Reader, token_id: int) -> Subscription | None:
    row = await db.fetchone(f"SELECT {SUBSCRIPTION_COLS} FROM push_subscriptions WHERE token_id = ?", (token_id,))
    return None if row is None else _subscription(row)


async def subscription(db: Reader, subscription_id: int) -> Subscription | None:
    row = await db.fetchone(f"SELECT {SUBSCRIPTION_COLS} FROM push_subscriptions WHERE id = ?", (subscription_id,))
    return None if row is None else _subscription(row)


async def update_subscription(tx: Tx, subscription_id: int, alerts: str, policy: str) -> None:
    await tx.execute("UPDATE push_subscriptions SET alerts = ?, policy = ?, updated_at = ? WHERE id = ?",
                     (alerts, policy, now_iso(), subscription_id))


async def delete_subscription_of_token(tx: Tx, token_id: int) -> None:
    await tx.execute("DELETE FROM push_subscriptions WHERE token_id = ?", (token_id,))


async def delete_subscription(tx: Tx, subscription_id: int) -> None:
    await tx.execute("DELETE FROM push_subscriptions WHERE id = ?", (subscription_id,))


# -- the push queue -----------------------------------------------------------------------------------


class Candidate(msgspec.Struct, frozen=True):
    """A notification of an event and a subscription of its recipient whose policy admits the sender."""

    notification_id: int
    type: str
    subscription_id: int
    alerts: str


async def candidates_for_events(db: Reader, event_ids: list[int]) -> list[Candidate]:
    """The events' notifications paired with their recipients' subscriptions, filtered by each
    subscription's policy: from anyone (all), from accounts the recipient follows (followed), from
    the recipient's followers (follower), or from no one (none)."""
    rows = await db.fetchall(
        "SELECT n.id, n.type, s.id, s.alerts FROM notifications n"
        " JOIN push_subscriptions s ON s.account_id = n.account_id"
        f" WHERE n.event_id IN ({marks(len(event_ids))}) AND (s.policy = 'all'"
        " OR (s.policy = 'followed' AND EXISTS (SELECT 1 FROM follows f"
        "     WHERE f.account_id = n.account_id AND f.target_account_id = n.from_account_id))"
        " OR (s.policy = 'follower' AND EXISTS (SELECT 1 FROM follows f"
        "     WHERE f.account_id = n.from_account_id AND f.target_account_id = n.account_id)))",
        event_ids)
    return [Candidate(r[0], r[1], r[2], r[3]) for r in rows]


async def enqueue(tx: Tx, pushes: list[tuple[int, int]], now: float) -> None:
    """One pending push per (notification id, subscription id); a repeated one adds nothing."""
    await tx.executemany(
        "INSERT INTO push_deliveries (notification_id, subscription_id, next_attempt_at) VALUES (?, ?, ?)"
        " ON CONFLICT DO NOTHING", [(n, s, now) for n, s in pushes])


class DuePush(msgspec.Struct, frozen=True):
    notification_id: int
    subscription_id: int
    attempts: int


async def claim_due(tx: Tx, now: float, until: float, limit: int) -> list[DuePush]:
    """Take up to `limit` due pushes for an attempt. The claim is the next attempt time moved to
    `until`: if the process dies mid-attempt, the push falls due again then, for any process."""
    rows = await tx.fetchall(
        "SELECT notification_id, subscription_id, attempts FROM push_deliveries WHERE next_attempt_at <= ?"
        f" ORDER BY next_attempt_at LIMIT ?{tx.dialect.skip_locked}", (now, limit))
    await tx.executemany("UPDATE push_deliveries SET next_attempt_at = ? WHERE notification_id = ? AND subscription_id = ?",
                         [(until, r[0], r[1]) for r in rows])
    return [DuePush(r[0], r[1], r[2]) for r in rows]


async def next_due_at(db: Reader) -> float | None:
    return await db.fetchval("SELECT min(next_attempt_at) FROM push_deliveries")


async def retry_later(tx: Tx, push: DuePush, next_at: float, error: str) -> None:
    await tx.execute("UPDATE push_deliveries SET attempts = ?, next_attempt_at = ?, last_error = ?"
                     " WHERE notification_id = ? AND subscription_id = ?",
                     (push.attempts + 1, next_at, error[:500], push.notification_id, push.subscription_id))


async def finish(tx: Tx, push: DuePush) -> None:
    """Delivered or given up: the outcome is in the boundary log, the row goes."""
    await tx.execute("DELETE FROM push_deliveries WHERE notification_id = ? AND subscription_id = ?",
                     (push.notification_id, push.subscription_id))


class Recipient(msgspec.Struct, frozen=True):
    """Whether a subscription may still receive pushes, and in which language."""

    usable: bool  # its token is not revoked and its account neither suspended nor disabled
    locale: str


async def recipient(db: Reader, subscription_id: int) -> Recipient | None:
    row = await db.fetchone(
        "SELECT t.revoked, a.suspended, u.disabled, u.locale FROM push_subscriptions s"
        " JOIN tokens t ON t.id = s.token_id JOIN accounts a ON a.id = s.account_id"
        " LEFT JOIN users u ON u.account_id = s.account_id WHERE s.id = ?", (subscription_id,))
    if row is None:
        return None
    usable = not row[0] and not row[1] and row[2] is not None and not row[2]
    return Recipient(usable=usable, locale=row[3] or "")

"""Web Push subscriptions (`/api/v1/push/subscription`) and the pushes notifications cause.

A subscription belongs to one access token, as in Mastodon: subscribing again replaces it, and
revoking the token deletes it (server/storage/oauth.py, in the revoking transaction). Pushes are
queued in the transaction that makes the notifications (an in-transaction subscriber of the event
outbox, after `notify.create_for_events`), one per notification and subscription whose alerts and
policy want it, and sent by the `push` worker (server/workers/push.py).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import msgspec

from server.domain.events import DomainEvent
from server.ids import new_id, now_iso
from server.ports import Tx
from server.render import push as render
from server.services.errors import BadRequest, NotFound, Unprocessable
from server.services.oauth import Credentials
from server.services.webpush import (
    PushClient,
    PushRefused,
    VapidKey,
    check_endpoint,
    parse_keys,
    seal_token,
)
from server.state import State
from server.storage import push as store
from server.version import VERSION

log = logging.getLogger("crosstalk.push")


class WebPush:
    """The instance's VAPID key and the client pushes leave through (one per serving process)."""

    def __init__(self, state: State) -> None:
        self.state = state
        settings = state.settings
        self.client = PushClient(f"Crosstalk/{VERSION} (+{state.base_url}/)",
                                 list(settings.push.allowed_private_addresses))
        self._vapid: VapidKey | None = None
        email = settings.instance.contact_email.strip()
        # RFC 8292's contact for the push services: the admins' address, else the instance itself.
        self.subject = f"mailto:{email}" if email else state.base_url

    async def start(self) -> None:
        self._vapid = await load_vapid_key(self.state)

    async def close(self) -> None:
        await self.client.close()

    @property
    def vapid(self) -> VapidKey:
        if self._vapid is None:
            raise RuntimeError("WebPush.start() has not run")
        return self._vapid

    def check(self, endpoint: str) -> str:
        """The endpoint's host:port if pushes may go there; PushRefused otherwise."""
        settings = self.state.settings
        return check_endpoint(endpoint, list(settings.push.allowed_hosts),
                              list(settings.push.allowed_private_addresses), allow_http=settings.development)


async def load_vapid_key(state: State) -> VapidKey:
    """The instance's VAPID key, made on the first start. Processes starting together race to store
    theirs; every one then uses the key that was stored first."""
    stored = await store.vapid_key(state.db)
    if stored is None:
        fresh = VapidKey.generate()
        async with state.db.transaction() as tx:
            await store.offer_vapid_key(tx, fresh.private, fresh.public)
        stored = await store.vapid_key(state.db)
        assert stored is not None
        log.info("made this instance's VAPID key (Web Push)")
    return VapidKey(private=stored[0], public=stored[1])


def server_key(state: State) -> str:
    return state.push.vapid.server_key


# -- the API ------------------------------------------------------------------------------------------


class SubscriptionRequest(msgspec.Struct, kw_only=True):
    """What an app sent to POST (or PUT, which has only alerts and policy)."""

    endpoint: str | None = None
    p256dh: str | None = None
    auth: str | None = None
    standard: bool = False
    alerts: dict[str, bool] = {}
    policy: str | None = None


def _alerts_json(alerts: dict[str, bool]) -> str:
    return msgspec.json.encode({k: v for k, v in alerts.items() if k in render.ALERTS}).decode()


def _policy(policy: str | None, default: str) -> str:
    if policy is None or policy == "":
        return default
    if policy not in render.POLICIES:
        raise Unprocessable(f"policy must be one of {', '.join(render.POLICIES)}")
    return policy


def _render(state: State, sub: store.Subscription) -> dict[str, Any]:
    return render.subscription_json(sub.id, sub.endpoint, sub.standard, msgspec.json.decode(sub.alerts),
                                    sub.policy, server_key(state))


async def subscribe(state: State, creds: Credentials, account_id: int, bearer: str,
                    request: SubscriptionRequest) -> dict[str, Any]:
    if not request.endpoint or not request.p256dh or not request.auth:
        raise BadRequest("param is missing or the value is empty: subscription (endpoint, keys[p256dh] and "
                         "keys[auth] are required)")
    try:
        parse_keys(request.p256dh, request.auth)
    except ValueError as exc:
        raise Unprocessable(str(exc)) from None
    try:
        state.push.check(request.endpoint)
    except PushRefused as exc:
        state.boundary.record("out", "push", exc.host or "-", "rejected", reason=f"subscription refused: {exc.reason}")
        raise Unprocessable(exc.reason) from None
    now = now_iso()
    subscription_id = new_id()
    sub = store.Subscription(
        id=subscription_id, token_id=creds.token.id, account_id=account_id, endpoint=request.endpoint,
        key_p256dh=request.p256dh.strip(), key_auth=request.auth.strip(), standard=request.standard,
        alerts=_alerts_json(request.alerts), policy=_policy(request.policy, "all"),
        sealed_token=seal_token(state.push.vapid.token_key(), subscription_id, bearer),
        created_at=now, updated_at=now)
    async with state.db.transaction() as tx:
        await store.replace_subscription(tx, sub)
    return _render(state, sub)


async def current(state: State, creds: Credentials) -> dict[str, Any]:
    sub = await store.subscription_of_token(state.db, creds.token.id)
    if sub is None:
        raise NotFound()
    return _render(state, sub)


async def update(state: State, creds: Credentials, request: SubscriptionRequest) -> dict[str, Any]:
    """Alerts given are set (the others keep their values); the policy changes if given."""
    async with state.db.transaction() as tx:
        sub = await store.subscription_of_token(tx, creds.token.id)
        if sub is None:
            raise NotFound()
        alerts = {**msgspec.json.decode(sub.alerts), **request.alerts}
        policy = _policy(request.policy, sub.policy)
        await store.update_subscription(tx, sub.id, _alerts_json(alerts), policy)
    return _render(state, msgspec.structs.replace(sub, alerts=_alerts_json(alerts), policy=policy))


async def unsubscribe(state: State, creds: Credentials) -> None:
    async with state.db.transaction() as tx:
        await store.delete_subscription_of_token(tx, creds.token.id)


# -- pushes from notifications ------------------------------------------------------------------------


async def enqueue_for_events(state: State, tx: Tx, events: list[tuple[int, DomainEvent]]) -> int:
    """In the recording transaction, after the notifications: one push per notification and
    subscription whose alerts include its type and whose policy admits its sender."""
    candidates = await store.candidates_for_events(tx, [event_id for event_id, _ in events])
    pushes = [(c.notification_id, c.subscription_id) for c in candidates if _wants(c)]
    if not pushes:
        return 0
    await store.enqueue(tx, pushes, time.time())
    tx.on_commit(lambda: state.jobs.wake("push"))
    return len(pushes)


def _wants(candidate: store.Candidate) -> bool:
    try:
        alerts = msgspec.json.decode(candidate.alerts)
    except msgspec.DecodeError:
        return False
    return isinstance(alerts, dict) and alerts.get(candidate.type) is True


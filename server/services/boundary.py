"""The organisation's boundary: who we federate with, what each partner may receive and send, and a
record of everything that crossed.

Every decision is made here, in one place, for both directions: the inbox asks `admit_request`,
fetches ask `check_fetch`, the outbox asks `plan_delivery`, stored remote posts go through
`inbound_note_rules`. Rules live in the database (the admin CLI and the admin API change them), and
are re-read when they change, so another process's change takes effect within a second.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from typing import Any

import msgspec

from federation.addressing import visibility_from_addressing
from federation.models import as_list, first_str, host_of, id_of, is_public
from server.domain.groups import GroupFederation, LocalGroup
from server.domain.records import Account
from server.state import State
from server.storage import boundary as store

log = logging.getLogger("crosstalk.boundary")
VISIBILITY_ORDER = ("public", "unlisted", "private", "direct")
RULES_CHECK_SECONDS = 1.0
LOG_FLUSH_SECONDS = 0.3


class Refused(Exception):
    """The boundary refuses this exchange; `reason` says why (it is logged and returned to peers)."""

    def __init__(self, reason: str, status: int = 403) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class Decision(msgspec.Struct):
    allowed: bool
    reason: str | None = None
    allow: store.DomainRule | None = None
    block: store.DomainRule | None = None


def _bare(host: str) -> str:
    """Host without a port, for matching rules written either way."""
    if host.startswith("["):
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _matches(rule: store.DomainRule, host: str) -> bool:
    host, bare = host.lower(), _bare(host.lower())
    domain = rule.domain.lower()
    if domain in (host, bare):
        return True
    return rule.include_subdomains and (bare.endswith("." + domain) or host.endswith("." + domain))


class Boundary:
    def __init__(self, state: State) -> None:
        self.state = state
        self.mode: str = state.settings.federation.mode
        self._rules: list[store.DomainRule] = []
        self._version: str | None = None
        self._checked = 0.0
        self._loading = asyncio.Lock()
        self._pending: list[store.LogEntry] = []
        self._flusher: asyncio.Task[None] | None = None

    # -- rules --------------------------------------------------------------------------------------------

    async def rules(self) -> list[store.DomainRule]:
        """The current rules. Nothing is decided before the first load has finished: callers that
        arrive while a load is under way wait for it (an empty list would admit blocked domains in
        blocklist mode and refuse every partner in allowlist mode)."""
        if self._due():
            async with self._loading:
                if self._due():
                    version = await store.rules_version(self.state.db)
                    if version != self._version:
                        self._rules = await store.all_rules(self.state.db)
                        self._version = version
                    self._checked = time.monotonic()  # only once the rules in hand are current
        return self._rules

    def _due(self) -> bool:
        return self._version is None or time.monotonic() - self._checked > RULES_CHECK_SECONDS

    def invalidate(self) -> None:
        self._checked = 0.0

    async def decide(self, host: str) -> Decision:
        host = host.lower()
        if not host or host == self.state.domain:
            return Decision(allowed=True)
        rules = await self.rules()
        block = next((r for r in rules if r.kind == "block" and _matches(r, host)), None)
        allow = next((r for r in rules if r.kind == "allow" and _matches(r, host)), None)
        if self.mode == "closed":
            return Decision(allowed=False, reason="federation is closed on this instance")
        if block is not None and block.severity == "suspend":
            return Decision(allowed=False, reason=f"domain {host} is blocked", block=block)
        if self.mode == "allowlist" and allow is None:
            return Decision(allowed=False, reason=f"domain {host} is not on the allowlist", block=block)
        return Decision(allowed=True, allow=allow, block=block)

    # -- inbound ------------------------------------------------------------------------------------------

    async def admit_request(self, key_host: str, event: str, path: str = "") -> None:
        """A request signed by `key_host` (inbox POST or signed fetch); raises Refused, logged."""
        decision = await self.decide(key_host)
        if not decision.allowed:
            self.record("in", event, key_host, "rejected", reason=decision.reason, activity_type=path or None)
            raise Refused(decision.reason or "refused")

    async def inbound_activity(self, domain: str, actor: str, activity_type: str, doc: dict[str, Any]) -> None:
        """Activity-level rules, checked when it is processed; raises Refused (logged)."""
        decision = await self.decide(domain)
        reason = decision.reason if not decision.allowed else None
        if reason is None and activity_type == "Flag" and decision.block is not None and decision.block.reject_reports:
            reason = "reports from this domain are rejected"
        if reason is not None:
            self.record("in", "receive", domain, "rejected", actor=actor, activity_type=activity_type, reason=reason)
            raise Refused(reason)
        self.record("in", "receive", domain, "ok", actor=actor, activity_type=activity_type)

    async def inbound_note_rules(self, domain: str) -> tuple[str | None, bool, bool]:
        """(most public visibility allowed, strip media, refuse direct messages) for posts from `domain`."""
        decision = await self.decide(domain)
        if not decision.allowed:
            raise Refused(decision.reason or "refused")
        max_visibility = None
        strip_media = False
        no_direct = False
        if decision.allow is not None:
            max_visibility = decision.allow.max_visibility_in
            strip_media = decision.allow.text_only
            no_direct = decision.allow.no_direct
        if decision.block is not None:
            if decision.block.severity == "limit":
                max_visibility = _less_public(max_visibility, "unlisted")
            strip_media = strip_media or decision.block.reject_media
        return max_visibility, strip_media, no_direct

    @staticmethod
    def clamp(visibility: str, most_public: str | None) -> str:
        if most_public is None:
            return visibility
        return _less_public(visibility, most_public) or visibility

    # -- outbound -----------------------------------------------------------------------------------------

    async def check_fetch(self, url: str) -> None:
        """May we fetch `url`? Raises Refused (logged). The caller logs the fetch itself once its
        outcome is known (`record_fetch`)."""
        host = host_of(url)
        decision = await self.decide(host)
        if not decision.allowed:
            self.record("out", "fetch", host, "rejected", actor=url[:500], reason=decision.reason)
            raise Refused(decision.reason or "refused")

    def record_fetch(self, url: str, error: str | None = None) -> None:
        """An outbound fetch that was made: `url` exactly as requested, `error` when it failed."""
        self.record("out", "fetch", host_of(url), "failed" if error else "ok", actor=url[:500],
                    reason=error[:300] if error else None)

    async def plan_delivery(self, sender: Account, activity: dict[str, Any],
                            targets: list[tuple[str, str]]) -> list[tuple[dict[str, Any], list[tuple[str, str]]]]:
        """Split one activity into what each partner may receive; targets that may not receive it are
        dropped (and logged)."""
        kind = first_str(activity.get("type")) or "?"
        groups: dict[tuple[bool, bool], list[tuple[str, str]]] = {}
        for inbox, host in targets:
            decision = await self.decide(host)
            if not decision.allowed:
                self.record("out", "delivery", host, "rejected", actor=sender.uri, activity_type=kind,
                            reason=decision.reason)
                continue
            allow, block = decision.allow, decision.block
            if allow is not None and allow.no_direct and _is_direct(activity, sender):
                self.record("out", "delivery", host, "rejected", actor=sender.uri, activity_type=kind,
                            reason="partner policy: no direct messages")
                continue
            followers_only = bool(allow is not None and allow.followers_only)
            text_only = bool((allow is not None and allow.text_only) or (block is not None and block.reject_media))
            groups.setdefault((followers_only, text_only), []).append((inbox, host))
        plan = []
        for (followers_only, text_only), group in groups.items():
            variant = activity
            if followers_only:
                variant = _followers_only(variant, sender)
            if text_only:
                variant = _without_media(variant)
            plan.append((variant, group))
        return plan

    async def check_delivery(self, host: str) -> str | None:
        """At delivery time (rules may have changed since the activity was queued): the refusal reason."""
        decision = await self.decide(host)
        return None if decision.allowed else decision.reason

    # -- groups -----------------------------------------------------------------------------------------
    # Where a group's boundary lies: a local-only group never crosses the instance's edge (no remote
    # member, no delivery, its actor is not served outside); a partners group only to and from the domains
    # it names; an open group wherever the instance federates. A members-only group's posts reach a
    # remote member only on a partner: a domain the group names, or (for an open group) a domain the
    # instance's own rules list as an allowed partner. The instance's rules apply on top of all of it.

    async def group_refusal(self, group: LocalGroup, host: str) -> str | None:
        """Why `host` may not take part in `group` (join, post, receive), or None when it may."""
        host = host.lower()
        if not host or host == self.state.domain:
            return None
        if group.federation == GroupFederation.LOCAL:
            return "the group is local to this instance"
        named = any(_matches(store.DomainRule(id=0, domain=d, kind="allow"), host) for d in group.partners)
        if group.federation == GroupFederation.PARTNERS and not named:
            return f"domain {host} is not a partner of this group"
        decision = await self.decide(host)
        if not decision.allowed:
            return decision.reason or "refused"
        if group.members_only and not named and decision.allow is None:
            return f"members-only group: {host} is not a partner instance"
        return None

    async def admit_group_activity(self, group: LocalGroup, group_uri: str, actor: Account, kind: str) -> None:
        """A remote actor's Follow of, or post to, a local group; raises Refused (logged)."""
        reason = await self.group_refusal(group, actor.domain)
        if reason is not None:
            self.record("in", "group", actor.domain, "rejected", actor=actor.uri, activity_type=kind,
                        reason=f"{group_uri}: {reason}")
            raise Refused(reason)

    async def plan_group_delivery(self, group: LocalGroup, sender: Account, activity: dict[str, Any],
                                  targets: list[tuple[str, str]]) -> list[tuple[dict[str, Any], list[tuple[str, str]]]]:
        """What a local group sends: only to the hosts its boundary admits, then as `plan_delivery`."""
        kind = first_str(activity.get("type")) or "?"
        admitted = []
        for inbox, host in targets:
            reason = await self.group_refusal(group, host)
            if reason is not None:
                self.record("out", "delivery", host, "rejected", actor=sender.uri, activity_type=kind, reason=reason)
                continue
            admitted.append((inbox, host))
        return await self.plan_delivery(sender, activity, admitted) if admitted else []

    # -- the log ------------------------------------------------------------------------------------------

    def record(self, direction: str, event: str, domain: str, outcome: str, *, actor: str | None = None,
               activity_type: str | None = None, reason: str | None = None) -> None:
        """Queue a boundary-log entry; a background flush writes them in batches."""
        self._pending.append(store.entry(direction, event, domain.lower(), outcome, actor=actor,
                                         activity_type=activity_type, reason=reason))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(LOG_FLUSH_SECONDS)
        await self.flush()

    async def flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:500], self._pending[500:]
            try:
                async with self.state.db.transaction() as tx:
                    await store.append(tx, batch)
            except Exception:
                log.exception("could not write %d boundary log entries", len(batch))
                return

    async def published_policy(self) -> dict[str, Any]:
        """NodeInfo metadata: the federation mode and the policies the admin chose to publish."""
        partners = [{"domain": r.domain, "followers_only": r.followers_only, "no_direct": r.no_direct,
                     "text_only": r.text_only, "max_visibility_in": r.max_visibility_in}
                    for r in await self.rules() if r.kind == "allow" and r.publish_policy]
        return {"federation": {"mode": self.mode, "partner_policies": partners}}


def _less_public(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b, key=VISIBILITY_ORDER.index)


def _object(activity: dict[str, Any]) -> dict[str, Any] | None:
    obj = activity.get("object")
    return obj if isinstance(obj, dict) else None


def _is_direct(activity: dict[str, Any], sender: Account) -> bool:
    obj = _object(activity)
    if first_str(activity.get("type")) not in ("Create", "Update") or obj is None:
        return False
    to = [x for x in (id_of(v) for v in as_list(obj.get("to"))) if x]
    cc = [x for x in (id_of(v) for v in as_list(obj.get("cc"))) if x]
    return visibility_from_addressing(to, cc, sender.followers_url or None) == "direct"


def _followers_only(activity: dict[str, Any], sender: Account) -> dict[str, Any]:
    """The same activity addressed to followers only: Public is removed wherever it appears."""
    followers = sender.followers_url or f"{sender.uri}/followers"
    variant = copy.deepcopy(activity)
    for doc in (variant, _object(variant)):
        if doc is None:
            continue
        to = [a for a in as_list(doc.get("to")) if not is_public(a)]
        cc = [a for a in as_list(doc.get("cc")) if not is_public(a)]
        if "to" in doc or "cc" in doc:
            if followers not in to:
                to.insert(0, followers)
            doc["to"], doc["cc"] = to, [a for a in cc if a != followers]
    return variant


def _without_media(activity: dict[str, Any]) -> dict[str, Any]:
    variant = copy.deepcopy(activity)
    obj = _object(variant)
    if obj is not None and obj.get("attachment"):
        obj["attachment"] = []
    return variant


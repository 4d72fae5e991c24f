"""Domain rules as admins manage them (CLI and admin API): allow, block (with suspension's purge),
remove, and CSV import/export in Mastodon's format (plus our per-partner policy columns)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from typing import Any

from server.ports import Tx
from server.services import audit
from server.services.errors import NotFound, Unprocessable
from server.state import Invalidation, State
from server.storage import boundary as store

DOMAIN = re.compile(r"^(?=.{1,253}(:\d{1,5})?$)[a-z0-9*]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$")
BLOCK_COLUMNS = ["#domain", "#severity", "#reject_media", "#reject_reports", "#public_comment", "#obfuscate"]
ALLOW_COLUMNS = ["#domain", "#public_comment", "#followers_only", "#no_direct", "#text_only", "#max_visibility_in",
                 "#publish_policy"]
Progress = Callable[[int, int], None]


def normalise(domain: str) -> str:
    value = domain.strip().lower().removeprefix("https://").removeprefix("http://").rstrip("/")
    if value.startswith("*."):
        value = value[2:]
    if not DOMAIN.match(value):
        raise Unprocessable(f"{domain!r} is not a domain name")
    return value


async def _changed(state: State, tx: Tx) -> None:
    """Every process re-reads the rules (at once with a bus, else within a second)."""
    await state.invalidations.announce(tx, Invalidation.BOUNDARY)


async def allow(state: State, actor: audit.Actor, domain: str, **policy: Any) -> store.DomainRule:
    domain = normalise(domain)
    visibility = policy.get("max_visibility_in")
    if visibility not in (None, "public", "unlisted", "private", "direct"):
        raise Unprocessable("max_visibility_in must be public, unlisted, private or direct")
    async with state.db.transaction() as tx:
        rule = await store.upsert_rule(tx, domain, "allow", {k: v for k, v in policy.items() if v is not None})
        await _changed(state, tx)
        await audit.record(tx, actor, "domain.allow", target_type="domain", target=domain,
                           detail=_policy_detail(policy))
    return rule


async def block(state: State, actor: audit.Actor, domain: str, *, severity: str = "suspend",
                progress: Progress | None = None, **options: Any) -> store.DomainRule:
    domain = normalise(domain)
    if severity not in ("suspend", "limit", "noop"):
        raise Unprocessable("severity must be suspend, limit or noop")
    async with state.db.transaction() as tx:
        rule = await store.upsert_rule(tx, domain, "block",
                                       {"severity": severity, **{k: v for k, v in options.items() if v is not None}})
        await _changed(state, tx)
        await audit.record(tx, actor, "domain.block", target_type="domain", target=domain,
                           detail={"severity": severity, **_policy_detail(options)})
    if severity == "suspend":
        await purge_domain(state, domain, rule.include_subdomains, progress)
    return rule


async def purge_domain(state: State, domain: str, include_subdomains: bool, progress: Progress | None = None) -> int:
    """Suspension: sever follows both ways and drop the domain's cached accounts' content, in batches."""
    account_ids = await store.domain_account_ids(state.db, domain, include_subdomains)
    total = len(account_ids)
    for done, account_id in enumerate(account_ids, 1):
        async with state.db.transaction() as tx:
            await store.purge_account(tx, account_id)
        if progress is not None and (done % 50 == 0 or done == total):
            progress(done, total)
    async with state.db.transaction() as tx:
        await store.pending_deliveries_to(tx, domain)
    return total


async def remove(state: State, actor: audit.Actor, domain: str, kind: str | None = None) -> int:
    domain = normalise(domain)
    async with state.db.transaction() as tx:
        count = await store.delete_rule(tx, domain, kind)
        await _changed(state, tx)
        if count:
            await audit.record(tx, actor, "domain.remove", target_type="domain", target=domain,
                               detail={"kind": kind or "any", "rules": count})
    if not count:
        raise NotFound(f"no rule for {domain}")
    return count


async def remove_by_id(state: State, actor: audit.Actor, rule_id: int, kind: str) -> store.DomainRule:
    rule = await store.rule_by_id(state.db, rule_id)
    if rule is None or rule.kind != kind:
        raise NotFound()
    await remove(state, actor, rule.domain, kind)
    return rule


async def rules(state: State, kind: str) -> list[store.DomainRule]:
    """Every allow or block rule ("allow" / "block")."""
    return [r for r in await store.all_rules(state.db) if r.kind == kind]


async def rule(state: State, rule_id: int, kind: str) -> store.DomainRule:
    found = await store.rule_by_id(state.db, rule_id)
    if found is None or found.kind != kind:
        raise NotFound()
    return found


def _policy_detail(policy: dict[str, Any]) -> audit.Detail:
    """What the audit entry keeps of a rule's options: the ones set, comments included."""
    return {k: v for k, v in policy.items() if isinstance(v, (str, int, bool)) and v not in ("", None)}


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1", "yes")


def export_csv(rules: list[store.DomainRule], kind: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if kind == "block":
        writer.writerow(BLOCK_COLUMNS)
        for r in rules:
            if r.kind == "block":
                writer.writerow([r.domain, r.severity, str(r.reject_media).lower(), str(r.reject_reports).lower(),
                                 r.public_comment, "false"])
    else:
        writer.writerow(ALLOW_COLUMNS)
        for r in rules:
            if r.kind == "allow":
                writer.writerow([r.domain, r.public_comment, str(r.followers_only).lower(), str(r.no_direct).lower(),
                                 str(r.text_only).lower(), r.max_visibility_in or "", str(r.publish_policy).lower()])
    return out.getvalue()


async def import_csv(state: State, actor: audit.Actor, text: str, kind: str, progress: Progress | None = None) -> int:
    """Mastodon's CSV (a header row of #columns, or bare domains one per line). Returns rules imported."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return 0
    header = [h.strip().lstrip("#").lower() for h in rows[0]] if rows[0] and rows[0][0].startswith("#") else ["domain"]
    body = rows[1:] if rows[0] and rows[0][0].startswith("#") else rows
    count = 0
    for row in body:
        if not row or not row[0].strip():
            continue
        values = dict(zip(header, row, strict=False))
        domain = values.get("domain", "")
        if kind == "block":
            await block(state, actor, domain, severity=(values.get("severity") or "suspend").strip() or "suspend",
                        reject_media=_flag(values.get("reject_media")), reject_reports=_flag(values.get("reject_reports")),
                        public_comment=values.get("public_comment") or "", progress=progress)
        else:
            await allow(state, actor, domain, public_comment=values.get("public_comment") or "",
                        followers_only=_flag(values.get("followers_only")), no_direct=_flag(values.get("no_direct")),
                        text_only=_flag(values.get("text_only")),
                        max_visibility_in=(values.get("max_visibility_in") or "").strip() or None,
                        publish_policy=_flag(values.get("publish_policy")))
        count += 1
    return count

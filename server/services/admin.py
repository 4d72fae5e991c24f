"""Mastodon's admin API for accounts and reports, and the same actions from `crosstalk admin`: who may
act (staff roles), the filters of the lists, and the actions, which go to server/services/lifecycle.py."""

from __future__ import annotations

import msgspec

from server.domain.identity import AdminAccount, AdminReport, Role
from server.domain.paging import Page
from server.domain.records import Account
from server.render.bundles import StatusPage
from server.services import audit, lifecycle, loaders
from server.services.errors import Forbidden, NotFound, Unprocessable
from server.state import State
from server.storage import accounts as account_store
from server.storage import identity as identity_store
from server.storage import moderation as moderation_store
from server.storage import reports as report_store
from server.storage import statuses as status_store

ACTIONS = ("none", "disable", "sensitive", "silence", "suspend")
STATUSES = ("active", "pending", "disabled", "silenced", "suspended")


class AccountFilter(msgspec.Struct, kw_only=True):
    origin: str | None = None  # local | remote
    status: str | None = None  # one of STATUSES
    staff: bool = False
    username: str | None = None
    display_name: str | None = None
    by_domain: str | None = None
    email: str | None = None


async def staff(state: State, account: Account, address: str | None, *, admin_only: bool = False) -> audit.Actor:
    """The caller as an audit actor, if their role allows the admin API (moderators: accounts and reports)."""
    role = await identity_store.role_of(state.db, account.id)
    if role is None or role is Role.USER or (admin_only and role is not Role.ADMIN):
        raise Forbidden("This action is not allowed")
    return audit.person(account.username, account.id, address)


async def admin_accounts(state: State, ids: list[int]) -> list[AdminAccount]:
    accounts = await account_store.get_many(state.db, ids)
    roles = await identity_store.roles_of(state.db, ids)
    moderation = await identity_store.moderation_of(state.db, ids)
    identities = await identity_store.identities_of(state.db, ids)
    out = []
    for account_id in ids:
        account = accounts.get(account_id)
        if account is None:
            continue
        user = await account_store.user(state.db, account_id) if account.local else None
        out.append(AdminAccount(account=account, user=user, role=roles.get(account_id, Role.USER),
                                moderation=moderation[account_id], identities=identities.get(account_id, [])))
    return out


async def list_accounts(state: State, filters: AccountFilter, page: Page) -> list[AdminAccount]:
    if filters.origin not in (None, "local", "remote"):
        raise Unprocessable("origin must be local or remote")
    if filters.status not in (None, *STATUSES):
        raise Unprocessable(f"status must be one of {', '.join(STATUSES)}")
    ids = await identity_store.admin_account_ids(
        state.db, origin=filters.origin, status=filters.status, role="staff" if filters.staff else None,
        username=filters.username, display_name=filters.display_name, by_domain=filters.by_domain,
        email=filters.email, max_id=page.max_id, since_id=page.since_id, min_id=page.min_id, limit=page.limit)
    return await admin_accounts(state, ids)


async def get_account(state: State, account_id: int) -> AdminAccount:
    found = await admin_accounts(state, [account_id])
    if not found or found[0].account.actor_type == "Application":
        raise NotFound()
    return found[0]


async def _target(state: State, actor: audit.Actor, account_id: int) -> Account:
    account = await lifecycle.account_or_404(state, account_id)
    await lifecycle.check_may_act(state, actor, account)
    return account


async def act(state: State, actor: audit.Actor, account_id: int, action: str, *, report_id: int | None = None,
              text: str = "") -> None:
    """POST /api/v1/admin/accounts/:id/action: none, disable, sensitive, silence or suspend; a report
    named with it is resolved."""
    if action not in ACTIONS:
        raise Unprocessable(f"type must be one of {', '.join(ACTIONS)}")
    account = await _target(state, actor, account_id)
    report = None
    if report_id is not None:
        report = await report_store.get(state.db, report_id)
        if report is None or report.target_account_id != account.id:
            raise NotFound("Record not found", "The report is not about this account")
    if action == "disable":
        await lifecycle.set_disabled(state, account, True, actor)
    elif action == "sensitive":
        await lifecycle.set_mark(state, account, "sensitized", True, actor)
    elif action == "silence":
        await lifecycle.set_mark(state, account, "silenced", True, actor)
    elif action == "suspend":
        await lifecycle.suspend(state, account, actor, origin="admin", reason=text[:500])
    elif report is None:
        await audit.record_now(state, actor, "account.warn", target_type="account", target_id=account.id,
                               target=account.acct, detail={"text": text[:500] or None})
    if report is not None:
        await resolve_report(state, actor, report.id)


async def undo(state: State, actor: audit.Actor, account_id: int, what: str) -> None:
    """enable, unsilence, unsuspend or unsensitive."""
    account = await _target(state, actor, account_id)
    if what == "enable":
        await lifecycle.set_disabled(state, account, False, actor)
    elif what == "unsilence":
        await lifecycle.set_mark(state, account, "silenced", False, actor)
    elif what == "unsensitive":
        await lifecycle.set_mark(state, account, "sensitized", False, actor)
    elif what == "unsuspend":
        if account.deleted_at is not None:
            raise Forbidden("A deleted account cannot be restored")
        await lifecycle.unsuspend(state, account, actor, origin="admin")
    else:
        raise NotFound()


async def approve(state: State, actor: audit.Actor, account_id: int) -> None:
    await lifecycle.approve(state, await _target(state, actor, account_id), actor)


async def reject(state: State, actor: audit.Actor, account_id: int) -> None:
    await lifecycle.reject(state, await _target(state, actor, account_id), actor)


async def delete(state: State, actor: audit.Actor, account_id: int) -> None:
    """DELETE /api/v1/admin/accounts/:id: as Mastodon, only for an account suspended first."""
    account = await _target(state, actor, account_id)
    if not account.suspended:
        raise Forbidden("The account must be suspended before it can be deleted")
    await lifecycle.delete(state, account, actor, origin="admin")


async def set_role(state: State, actor: audit.Actor, account_id: int, role: str) -> None:
    try:
        wanted = Role(role)
    except ValueError:
        raise Unprocessable("role must be user, moderator or admin") from None
    account = await _target(state, actor, account_id)
    await lifecycle.set_role(state, account, wanted, actor, source="admin")


async def unlink(state: State, actor: audit.Actor, account_id: int) -> int:
    return await lifecycle.unlink_identities(state, await _target(state, actor, account_id), actor)


# -- reports ------------------------------------------------------------------------------------------------

async def list_reports(state: State, *, resolved: bool | None, account_id: int | None,
                       target_account_id: int | None, page: Page) -> list[int]:
    return await moderation_store.report_ids(state.db, resolved=resolved, account_id=account_id,
                                             target_account_id=target_account_id, max_id=page.max_id,
                                             since_id=page.since_id, min_id=page.min_id, limit=page.limit)


async def admin_reports(state: State, ids: list[int], viewer_id: int | None = None
                        ) -> tuple[list[AdminReport], dict[int, StatusPage]]:
    """The reports with everyone involved, and each report's statuses ready to render for the viewer
    (loaded together for the whole page)."""
    reports = await report_store.get_many(state.db, ids)
    handlers = await moderation_store.handlers(state.db, ids)
    people = {a for r in reports.values() for a in (r.account_id, r.target_account_id)}
    people |= {a for pair in handlers.values() for a in pair if a is not None}
    by_id = {a.account.id: a for a in await admin_accounts(state, list(people))}
    out: list[AdminReport] = []
    statuses: dict[int, StatusPage] = {}
    for report_id in ids:
        report = reports.get(report_id)
        if report is None or report.target_account_id not in by_id:
            continue
        assigned, resolver = handlers.get(report_id, (None, None))
        out.append(AdminReport(report=report, reporter=by_id.get(report.account_id),
                               target=by_id[report.target_account_id],
                               assigned=by_id.get(assigned) if assigned else None,
                               action_taken_by=by_id.get(resolver) if resolver else None,
                               assigned_account_id=assigned))
    found = await status_store.get_many(state.db, {s for r in out for s in r.report.status_ids})
    live = {i: s for i, s in found.items() if s.deleted_at is None}
    every = await loaders.status_page(state, viewer_id, list(live.values()))
    for r in out:
        items = [live[s] for s in r.report.status_ids if s in live]
        statuses[r.report.id] = StatusPage(items=items, bundle=every.bundle, viewer=every.viewer,
                                           cursor_ids=[s.id for s in items])
    return out, statuses


async def _report(state: State, report_id: int) -> int:
    if await report_store.get(state.db, report_id) is None:
        raise NotFound()
    return report_id


async def assign_report(state: State, actor: audit.Actor, report_id: int, to_self: bool) -> None:
    await _report(state, report_id)
    async with state.db.transaction() as tx:
        await moderation_store.assign(tx, report_id, actor.account_id if to_self else None)
        await audit.record(tx, actor, "report.assign" if to_self else "report.unassign", target_type="report",
                           target_id=report_id)


async def resolve_report(state: State, actor: audit.Actor, report_id: int) -> None:
    await _report(state, report_id)
    async with state.db.transaction() as tx:
        await moderation_store.resolve(tx, report_id, actor.account_id)
        await audit.record(tx, actor, "report.resolve", target_type="report", target_id=report_id)


async def reopen_report(state: State, actor: audit.Actor, report_id: int) -> None:
    await _report(state, report_id)
    async with state.db.transaction() as tx:
        await moderation_store.reopen(tx, report_id)
        await audit.record(tx, actor, "report.reopen", target_type="report", target_id=report_id)


async def account_id_by_name(state: State, name: str) -> int:
    """For the CLI: an account id from a local username, user@domain, or an id."""
    if name.isdigit():
        return int(name)
    username, _, domain = name.lstrip("@").partition("@")
    account = await account_store.by_username(state.db, username, "" if domain == state.domain else domain)
    if account is None:
        raise NotFound(f"no account {name}")
    return account.id

"""Reports: users flag accounts (and some of their statuses) for the moderators, who get an
`admin.report` notification. The reports are kept for the moderation tools."""

from __future__ import annotations

import msgspec

from server.domain.events import ReportFiled
from server.domain.records import Account, Report
from server.ids import new_id, now_iso
from server.services import accounts as account_service
from server.services.errors import NotFound, Unprocessable
from server.services.visibility import can_see
from server.state import State
from server.storage import accounts as account_store
from server.storage import reports as store
from server.storage import statuses

CATEGORIES = ("spam", "legal", "violation", "other")
MAX_COMMENT = 1000  # Mastodon's limit for local reports
MAX_STATUSES = 100


class NewReport(msgspec.Struct, kw_only=True):
    account_id: int | None
    status_ids: list[int] = []
    comment: str = ""
    forward: bool = False
    category: str | None = None
    rule_ids: list[int] = []


async def file(state: State, reporter: Account, new: NewReport) -> Report:
    if new.account_id is None:
        raise Unprocessable("account_id can't be blank")
    target = await account_service.require_account(state, new.account_id)
    if target.id == reporter.id:
        raise Unprocessable("You cannot report yourself")
    comment = new.comment.strip()
    if len(comment) > MAX_COMMENT:
        raise Unprocessable(f"Comment is too long (maximum is {MAX_COMMENT} characters)")
    category = new.category or ("violation" if new.rule_ids else "other")
    if category not in CATEGORIES:
        raise Unprocessable(f"Category must be one of {', '.join(CATEGORIES)}")
    if new.rule_ids:
        # The instance publishes no rules (GET /api/v1/instance/rules is empty), so none can be cited.
        raise Unprocessable(f"Rule {new.rule_ids[0]} does not exist")
    status_ids = list(dict.fromkeys(new.status_ids))
    if len(status_ids) > MAX_STATUSES:
        raise Unprocessable(f"A report can include at most {MAX_STATUSES} statuses")
    theirs = await store.existing_status_ids(state.db, target.id, status_ids)
    for status_id in status_ids:
        status = await statuses.get(state.db, status_id) if status_id in theirs else None
        if status is None or not await can_see(state, reporter.id, status):
            raise NotFound("Record not found", f"Status {status_id} is not a status of the reported account")
    return await store_report(state, reporter, target, status_ids, comment, category,
                              forward=new.forward and not target.local)


async def store_report(state: State, reporter: Account, target: Account, status_ids: list[int], comment: str,
                       category: str = "other", *, forward: bool = False, uri: str | None = None) -> Report:
    """Save a report (from the API, or from another server's Flag) and notify the moderators.
    A Flag delivered twice (same uri) is stored once."""
    if uri is not None:
        existing = await store.id_by_uri(state.db, uri)
        found = await store.get(state.db, existing) if existing is not None else None
        if found is not None:
            return found
    now = now_iso()
    report = Report(id=new_id(), account_id=reporter.id, target_account_id=target.id, category=category,
                    comment=comment, forward=forward, rule_ids=[], status_ids=status_ids, uri=uri,
                    action_taken_at=None, created_at=now, updated_at=now)
    async with state.db.transaction() as tx:
        await store.insert(tx, report)
        await state.events.record(tx, ReportFiled(report_id=report.id))
    return report


async def targets(state: State, reports: list[Report]) -> dict[int, Account]:
    """The reported accounts, for rendering reports."""
    return await account_store.get_many(state.db, [r.target_account_id for r in reports])

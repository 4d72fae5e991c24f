"""`crosstalk admin` commands for identity and moderation: account actions (as Mastodon's admin API),
reports, SCIM tokens and the audit log. Every action is recorded in the audit log as done by `cli`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import msgspec

from server.services.errors import ServiceError

ACCOUNT_ACTIONS = ("suspend", "unsuspend", "disable", "enable", "silence", "unsilence", "sensitive", "unsensitive",
                   "approve", "reject", "delete", "unlink-sso", "role", "show")


def _run_with_state(args: argparse.Namespace, work: Any) -> Any:
    from server.cli import _run, _settings, _with_state
    return _run(_with_state(_settings(args), work))


def cmd_account(args: argparse.Namespace) -> int:
    from server.services import admin, audit

    async def work(state: Any) -> Any:
        account_id = await admin.account_id_by_name(state, args.name)
        actor, action = audit.CLI, args.account_action
        if action == "show":
            return await admin.get_account(state, account_id)
        if action in ("suspend", "disable", "sensitive", "silence"):
            await admin.act(state, actor, account_id, action, text=args.reason or "")
        elif action in ("unsuspend", "enable", "unsilence", "unsensitive"):
            await admin.undo(state, actor, account_id, action)
        elif action == "approve":
            await admin.approve(state, actor, account_id)
        elif action == "reject":
            await admin.reject(state, actor, account_id)
        elif action == "delete":
            await admin.delete(state, actor, account_id)
        elif action == "unlink-sso":
            return await admin.unlink(state, actor, account_id)
        elif action == "role":
            if not args.role:
                raise ServiceError("give the role: user, moderator or admin")
            await admin.set_role(state, actor, account_id, args.role)
        return None

    result = _run_with_state(args, work)
    if args.account_action == "show":
        a, u = result.account, result.user
        print(f"{a.acct} (id {a.id}) role={result.role.value} suspended={bool(a.suspended)} "
              f"disabled={bool(u.disabled) if u else False} silenced={result.moderation.silenced_at is not None} "
              f"sensitized={result.moderation.sensitized_at is not None} "
              f"sso={','.join(i.issuer for i in result.identities) or '-'}")
    elif args.account_action == "unlink-sso":
        print(f"removed {result} single sign-on link(s) of {args.name}")
    else:
        print(f"{args.account_action}: {args.name}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from server.services import admin, audit
    from server.storage.paging import Page

    async def work(state: Any) -> Any:
        if args.report_action == "list":
            reports, _ = await admin.admin_reports(state, await admin.list_reports(
                state, resolved=args.resolved, account_id=None, target_account_id=None, page=Page(limit=200)))
            return reports
        if not args.id.isdigit():
            raise ServiceError(f"{args.id!r} is not a report id")
        report_id = int(args.id)
        if args.report_action == "resolve":
            await admin.resolve_report(state, audit.CLI, report_id)
        elif args.report_action == "reopen":
            await admin.reopen_report(state, audit.CLI, report_id)
        return None

    result = _run_with_state(args, work)
    if args.report_action == "list":
        print(f"{'ID':<20} {'STATE':<9} {'TARGET':<30} {'BY':<20} COMMENT")
        for r in result:
            state = "resolved" if r.report.action_taken_at else "open"
            by = r.reporter.account.acct if r.reporter else "-"
            print(f"{r.report.id:<20} {state:<9} {r.target.account.acct:<30} {by:<20} {r.report.comment[:40]}")
    else:
        print(f"{args.report_action}d report {args.id}")
    return 0


def cmd_scim_token(args: argparse.Namespace) -> int:
    from server.services import scim

    async def work(state: Any) -> Any:
        if args.token_action == "create":
            return await scim.create_token(state, args.name)
        if args.token_action == "revoke":
            if not args.id.isdigit():
                raise ServiceError(f"{args.id!r} is not a token id")
            return await scim.revoke_token(state, int(args.id))
        return await scim.list_tokens(state)

    result = _run_with_state(args, work)
    if args.token_action == "create":
        token, secret = result
        print(f"created SCIM token {token.id} ({token.name}); give this bearer token to the SCIM client, it is "
              "not shown again:", file=sys.stderr)
        print(secret)
    elif args.token_action == "revoke":
        print(f"revoked SCIM token {result.id} ({result.name})")
    else:
        print(f"{'ID':<20} {'NAME':<24} {'CREATED':<25} {'LAST USED':<25} STATE")
        for t in result:
            print(f"{t.id:<20} {t.name:<24} {t.created_at:<25} {t.last_used_at or '-':<25} "
                  f"{'revoked ' + t.revoked_at if t.revoked_at else 'active'}")
    return 0


def cmd_audit_log(args: argparse.Namespace) -> int:
    from server.cli import _cli_time
    from server.render.admin import audit_json
    from server.services import audit
    since = _cli_time(args.since, "--since")

    async def work(state: Any) -> Any:
        found, after = [], 0
        while True:
            batch = await audit.entries(state, actor=args.actor, action=args.action, after_id=after, limit=1000,
                                        since=since.strftime("%Y-%m-%dT%H:%M:%S.000Z") if since else None)
            found.extend(batch)
            if len(batch) < 1000:
                return found
            after = batch[-1].id

    for entry in _run_with_state(args, work):
        if args.json:
            print(msgspec.json.encode(audit_json(entry)).decode())
        else:
            target = entry.target or entry.target_id or "-"
            print(f"{entry.at} {entry.actor:<20} {entry.action:<20} {entry.outcome:<8} {target:<30} "
                  f"{entry.address or '-':<15} {entry.detail}")
    return 0


def add_commands(admin_sub: Any) -> None:
    account = admin_sub.add_parser("account", help="moderate an account: " + ", ".join(ACCOUNT_ACTIONS))
    account.add_argument("account_action", choices=ACCOUNT_ACTIONS)
    account.add_argument("name", help="a local username, user@domain, or an account id")
    account.add_argument("role", nargs="?", help="for `role`: user, moderator or admin")
    account.add_argument("--reason", help="why (kept in the audit log)")
    account.set_defaults(func=cmd_account)

    report = admin_sub.add_parser("report", help="reports: list, resolve, reopen")
    report_sub = report.add_subparsers(dest="report_action", required=True)
    listing = report_sub.add_parser("list", help="list reports")
    listing.add_argument("--resolved", action=argparse.BooleanOptionalAction, default=None)
    listing.set_defaults(func=cmd_report)
    for name in ("resolve", "reopen"):
        step = report_sub.add_parser(name, help=f"{name} a report")
        step.add_argument("id")
        step.set_defaults(func=cmd_report)

    token = admin_sub.add_parser("scim-token", help="bearer tokens of SCIM provisioning clients")
    token_sub = token.add_subparsers(dest="token_action", required=True)
    create = token_sub.add_parser("create", help="create a token (printed once)")
    create.add_argument("name", help="which client it is for, e.g. entra-id")
    create.set_defaults(func=cmd_scim_token)
    token_sub.add_parser("list", help="list tokens").set_defaults(func=cmd_scim_token)
    revoke = token_sub.add_parser("revoke", help="revoke a token")
    revoke.add_argument("id")
    revoke.set_defaults(func=cmd_scim_token)

    log = admin_sub.add_parser("audit-log", help="the audit log of admin and security events (append-only)")
    log.add_argument("--actor", help="only entries by this actor (a username, cli, scim:NAME, system)")
    log.add_argument("--action", help="only this action, or actions starting with a prefix ending in '.'")
    log.add_argument("--since", help="RFC 3339 time or date, e.g. 2026-11-01")
    log.add_argument("--json", action="store_true", help="one JSON object per line (for a SIEM)")
    log.set_defaults(func=cmd_audit_log)

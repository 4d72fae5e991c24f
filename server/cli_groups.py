"""`crosstalk admin group ...`: groups managed by the instance's administrator (who acts with the
owner's rights on every local group). Each change is recorded in the audit log as done by `cli`."""

from __future__ import annotations

import argparse
from typing import Any

from server.services.errors import ServiceError

MEMBER_ACTIONS = ("approve", "reject", "kick", "ban", "unban", "promote", "demote", "transfer")
POST_ACTIONS = ("remove-post", "pin", "unpin", "approve-post", "reject-post")


def _run_with_state(args: argparse.Namespace, work: Any) -> Any:
    from server.cli import _run, _settings, _with_state
    return _run(_with_state(_settings(args), work))


def _status_id(value: str) -> int:
    from server.ids import parse_id
    parsed = parse_id(value)
    if parsed is None:
        raise ServiceError(f"{value!r} is not a status id")
    return parsed


def cmd_group(args: argparse.Namespace) -> int:
    from server.domain.groups import GroupRole
    from server.services import audit
    from server.services import groups as service

    action = args.group_action

    async def work(state: Any) -> Any:
        if action == "list":
            found = await service.browse(state, "", 200, 0)
            settings = await service.settings_of(state, [a.id for a in found])
            return [(a, settings.get(a.id)) for a in found if a.local]
        if action == "create":
            owner = await service.account_by_handle(state, args.owner)
            spec = service.GroupSpec(username=args.name, display_name=args.display_name or "", note=args.note or "",
                                     kind=args.kind, federation=args.federation, partners=args.partner or [],
                                     rules=args.rules or "")
            account = await service.create(state, owner, spec)
            await audit.record_now(state, audit.CLI, "group.create", target_type="group", target_id=account.id,
                                   target=account.username)
            return account
        account, group = await service.by_name(state, args.name)
        if action == "show":
            return account, group, await service.owner_of(state, account.id), await service.roles(state, account.id)
        if action == "update":
            changes = service.GroupChanges(display_name=args.display_name, note=args.note, kind=args.kind,
                                           federation=args.federation, partners=args.partner, rules=args.rules,
                                           non_member_posts=args.non_member_posts)
            await service.update(state, None, account.id, changes)
        elif action in ("archive", "unarchive"):
            await service.set_archived(state, None, account.id, action == "archive")
        elif action == "requests":
            return await service.requests(state, None, account.id, 200)
        elif action == "pending":
            return await service.held_posts(state, None, account.id, 200)
        elif action in ("approve-post", "reject-post"):  # audited in the service's transaction
            await service.answer_held_post(state, None, account.id, _status_id(args.target), action == "approve-post")
            return None
        elif action in MEMBER_ACTIONS:
            member = await service.account_by_handle(state, args.target)
            if action in ("approve", "reject"):
                await service.answer_request(state, None, account.id, member, action == "approve")
            elif action == "kick":
                await service.kick(state, None, account.id, member)
            elif action in ("ban", "unban"):
                await service.ban(state, None, account.id, member, action == "ban")
            elif action in ("promote", "demote"):
                await service.set_role(state, None, account.id, member,
                                       GroupRole.ADMIN if action == "promote" else GroupRole.USER)
            else:
                await service.transfer(state, None, account.id, member)
        elif action in POST_ACTIONS:
            status_id = _status_id(args.target)
            if action == "remove-post":
                await service.remove_post(state, None, account.id, status_id)
            else:
                await service.pin_post(state, None, account.id, status_id, action == "pin")
        await audit.record_now(state, audit.CLI, f"group.{action}", target_type="group", target_id=account.id,
                               target=account.username, detail={"target": getattr(args, "target", None)})
        return None

    result = _run_with_state(args, work)
    if action == "list":
        for account, group in result:
            kind = f"{group.kind} {group.federation}" if group else "-"
            archived = " archived" if group and group.archived_at else ""
            print(f"{account.username}\t{account.followers_count} members\t{kind}{archived}\t{account.display_name}")
    elif action == "create":
        print(f"created group {result.username} (id {result.id})")
    elif action == "show":
        account, group, owner, roles = result
        print(f"{account.username} (id {account.id}) kind={group.kind} federation={group.federation} "
              f"partners={','.join(group.partners) or '-'} members={account.followers_count} "
              f"archived={group.archived_at is not None} owner={owner}")
        for account_id, role in sorted(roles.items()):
            print(f"  {role}\t{account_id}")
    elif action == "requests":
        for account_id in result:
            print(account_id)
    elif action == "pending":
        for status in result:
            print(f"{status.id}\t{status.account_id}\t{status.created_at}\t{status.source_text[:80]}")
    else:
        print(f"{action}: {args.name}")
    return 0


def add_commands(admin_sub: Any) -> None:
    group = admin_sub.add_parser("group", help="groups: create, list, show, update, members' requests, moderation")
    sub = group.add_subparsers(dest="group_action", required=True)
    sub.add_parser("list", help="list the groups hosted here").set_defaults(func=cmd_group)
    create = sub.add_parser("create", help="create a group (its owner is a local user)")
    create.add_argument("name", help="the group's handle (@name@this-domain)")
    create.add_argument("--owner", required=True, help="local username of the owner")
    for target in (create, sub.add_parser("update", help="change a group's settings")):
        if target is not create:
            target.add_argument("name")
        target.add_argument("--display-name")
        target.add_argument("--note", help="description")
        target.add_argument("--rules")
        target.add_argument("--kind", choices=("open", "approval", "members_only"),
                            default="open" if target is create else None)
        target.add_argument("--federation", choices=("local", "partners", "open"),
                            default="local" if target is create else None,
                            help="local: never federated; partners: only with the --partner domains")
        target.add_argument("--partner", action="append", help="a partner domain (repeat for several)")
        if target is not create:
            target.add_argument("--non-member-posts", choices=("refuse", "hold"),
                                help="posts from non-members: refuse them, or hold them for the moderators")
        target.set_defaults(func=cmd_group)
    for name, text in (("show", "show a group"), ("archive", "make a group read-only"),
                       ("unarchive", "reopen an archived group"), ("requests", "list pending join requests"),
                       ("pending", "list non-members' posts held for the moderators")):
        step = sub.add_parser(name, help=text)
        step.add_argument("name")
        step.set_defaults(func=cmd_group)
    for name in MEMBER_ACTIONS:
        step = sub.add_parser(name, help=f"{name} a member (user or user@domain)")
        step.add_argument("name")
        step.add_argument("target", help="user or user@domain")
        step.set_defaults(func=cmd_group)
    for name in POST_ACTIONS:
        step = sub.add_parser(name, help=f"{name.replace('-', ' ')} (a status id)")
        step.add_argument("name")
        step.add_argument("target", help="status id")
        step.set_defaults(func=cmd_group)

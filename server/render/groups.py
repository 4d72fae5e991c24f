"""Groups as the Soapbox (Truth Social) groups API shows them: Group, GroupRelationship and
GroupMember entities. Pure: it is handed the account JSON already rendered and the facts it needs."""

from __future__ import annotations

from typing import Any

from server.domain.groups import GroupKind, GroupRole, LocalGroup


def group_json(account: dict[str, Any], domain: str, group: LocalGroup | None, owner_id: int | None,
               relationship: dict[str, Any] | None = None) -> dict[str, Any]:
    """`account` is the group account's Mastodon JSON; `domain` its host ('' for a group hosted here)."""
    members_only = group is not None and group.kind == GroupKind.MEMBERS_ONLY
    data = {
        "id": account["id"],
        "uri": account["uri"],
        "url": account["url"],
        "slug": account["username"],
        "display_name": account["display_name"],
        "note": account["note"],
        "source": {"note": group.rules if group is not None else ""},
        "avatar": account["avatar"],
        "avatar_static": account["avatar_static"],
        "header": account["header"],
        "header_static": account["header_static"],
        "created_at": account["created_at"],
        "deleted_at": None,
        "domain": domain,
        "emojis": [],
        "locked": account["locked"],
        "membership_required": account["locked"],
        "group_visibility": "members_only" if members_only else "everyone",
        "statuses_visibility": "members_only" if members_only else "public",
        "members_count": account["followers_count"],
        "discoverable": account["discoverable"],
        "owner": {"id": str(owner_id)} if owner_id is not None else None,
        "tags": [],
        "relationship": relationship,
        # What Crosstalk adds: the group's kind, how far it federates, its rules and archive state.
        "crosstalk": None if group is None else {
            "kind": str(group.kind), "federation": str(group.federation), "partners": group.partners,
            "rules": group.rules, "archived": group.archived_at is not None, "archived_at": group.archived_at,
            "non_member_posts": str(group.non_member_posts)},
    }
    return data


def relationship_json(group_id: int, *, member: bool, requested: bool, role: GroupRole, blocked_by: bool,
                      pending_requests: bool) -> dict[str, Any]:
    return {"id": str(group_id), "member": member, "requested": requested,
            "role": str(role) if member or role != GroupRole.USER else None, "blocked_by": blocked_by,
            "notifying": None, "muting": False, "pending_requests": pending_requests}


def member_json(follow_id: int, account: dict[str, Any], role: GroupRole) -> dict[str, Any]:
    return {"id": str(follow_id), "account": account, "role": str(role)}

"""Groups (FEP-1b12): the record of a group hosted here, its kinds, federation scopes and roles."""

from __future__ import annotations

from enum import StrEnum

import msgspec


class GroupKind(StrEnum):
    OPEN = "open"  # anyone allowed may join; posts are public
    APPROVAL = "approval"  # join requests are approved by moderators (a locked account); posts are public
    MEMBERS_ONLY = "members_only"  # approval to join, and posts reach members only


class GroupFederation(StrEnum):
    LOCAL = "local"  # never federated: no remote member, no remote delivery, the actor is not served
    PARTNERS = "partners"  # members and deliveries only from and to the named partner domains
    OPEN = "open"  # any domain the instance's boundary lets through


class NonMemberPosts(StrEnum):
    """What a local group does with a post addressed to it by someone who is not a member."""
    REFUSE = "refuse"  # not taken in (logged; in the boundary log when the author is remote)
    HOLD = "hold"  # kept pending until a moderator approves (then shared as a member's post) or rejects it


class GroupRole(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"  # a moderator
    USER = "user"  # a plain member (the Soapbox API's name)


class LocalGroup(msgspec.Struct, kw_only=True):
    account_id: int
    kind: GroupKind
    federation: GroupFederation
    partners: list[str]
    rules: str
    archived_at: str | None
    created_at: str
    non_member_posts: NonMemberPosts = NonMemberPosts.REFUSE

    @property
    def members_only(self) -> bool:
        return self.kind == GroupKind.MEMBERS_ONLY

    @property
    def locked(self) -> bool:
        return self.kind != GroupKind.OPEN


class GroupPost(msgspec.Struct, kw_only=True):
    group_id: int
    status_id: int
    share_id: int | None
    top_level: bool
    pinned: bool
    removed_at: str | None
    created_at: str


class HeldPost(msgspec.Struct, kw_only=True):
    """A non-member's post to a group that holds such posts, waiting for a moderator."""
    group_id: int
    status_id: int
    author_id: int
    top_level: bool
    created_at: str

"""Records of enterprise identity: roles, provider links, moderation state, SCIM resources, audit."""

from __future__ import annotations

from enum import StrEnum

import msgspec

from server.domain.records import Account, Report, User


class Role(StrEnum):
    USER = "user"
    MODERATOR = "moderator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return {"user": 0, "moderator": 1, "admin": 2}[self.value]


class Identity(msgspec.Struct, kw_only=True):
    """An account's link to an OpenID provider."""

    id: int
    account_id: int
    issuer: str
    subject: str
    email: str | None
    created_at: str
    last_login_at: str | None


class Moderation(msgspec.Struct, kw_only=True):
    account_id: int
    silenced_at: str | None = None
    sensitized_at: str | None = None
    suspended_at: str | None = None
    suspension_origin: str | None = None


class AdminAccount(msgspec.Struct, kw_only=True):
    """What Mastodon's Admin::Account entity is made of."""

    account: Account
    user: User | None
    role: Role
    moderation: Moderation
    identities: list[Identity] = []
    last_address: str | None = None


class AdminReport(msgspec.Struct, kw_only=True):
    report: Report
    reporter: AdminAccount | None
    target: AdminAccount
    assigned: AdminAccount | None
    action_taken_by: AdminAccount | None
    assigned_account_id: int | None


class AuditEntry(msgspec.Struct, kw_only=True):
    id: int
    at: str
    actor_id: int | None
    actor: str
    action: str
    target_type: str | None
    target_id: str | None
    target: str | None
    address: str | None
    outcome: str
    detail: str  # JSON object


class ScimUser(msgspec.Struct, kw_only=True):
    account_id: int
    user_name: str
    external_id: str | None
    active: bool
    given_name: str | None
    family_name: str | None
    department: str | None
    title: str | None
    manager_id: str | None
    created_at: str
    updated_at: str
    version: int
    # From the account and the user:
    display_name: str = ""
    email: str = ""
    username: str = ""


class ScimGroup(msgspec.Struct, kw_only=True):
    id: int
    display_name: str
    external_id: str | None
    created_at: str
    updated_at: str
    version: int
    members: list[tuple[int, str]] = []  # (account id, SCIM userName)


class ScimToken(msgspec.Struct, kw_only=True):
    id: int
    name: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None

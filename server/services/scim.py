"""SCIM 2.0 provisioning (RFC 7643/7644): Users become local accounts (single sign-on only, no password),
Groups carry roles (scim.admin_groups, scim.moderator_groups) until Crosstalk has groups of its own.

What real clients send is accepted, quirks included: Entra ID's capitalised ops (`Replace`), member
removal with a `value` list, string booleans ("False"), flattened extension paths; Okta's no-path
`replace` of `{"active": false}` (and of `{id, displayName}` for a group rename). A user's resource is
turned into a flat set of attributes, the request is applied to that, and the difference is written
in one go, so PUT, PATCH with a path and PATCH without one all share the same rules.
"""

from __future__ import annotations

from typing import Any

import msgspec

from server.domain import scim_filter
from server.domain.identity import ScimGroup, ScimToken, ScimUser
from server.domain.records import Account
from server.ids import now_iso
from server.services import audit, lifecycle, oidc
from server.services.errors import ServiceError
from server.services.secrets import new_token, token_hash
from server.state import State
from server.storage import accounts as account_store
from server.storage import identity as identity_store
from server.storage import scim as store

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ENT = ENTERPRISE_SCHEMA.lower() + ":"
FIELD_LABELS = {"department": "Department", "title": "Title"}  # SCIM attribute → profile field name

# Attributes a client may send that Crosstalk does not keep: accepted and ignored, so a sync never fails.
IGNORED = {"schemas", "nickname", "preferredlanguage", "locale", "timezone", "phonenumbers", "addresses",
           "usertype", "profileurl", "photos", "ims", "entitlements", "roles", "x509certificates", "password",
           "name.formatted", "name.middlename", "name.honorificprefix", "name.honorificsuffix",
           ENT + "employeenumber", ENT + "costcenter", ENT + "organization", ENT + "division"}
READ_ONLY = {"id", "meta", "groups"}


class ScimError(ServiceError):
    """An error in SCIM's own format: `status` and `scimType` (RFC 7644 §3.12)."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.scim_type = scim_type


# -- tokens ----------------------------------------------------------------------------------------------

async def create_token(state: State, name: str) -> tuple[ScimToken, str]:
    if not name.strip() or len(name) > 100:
        raise ServiceError("give the token a name (at most 100 characters), e.g. entra-id")
    secret = new_token()
    async with state.db.transaction() as tx:
        token = await store.insert_token(tx, name.strip(), token_hash(secret))
        await audit.record(tx, audit.CLI, "scim.token.create", target_type="scim_token", target_id=token.id,
                           target=token.name)
    return token, secret


async def list_tokens(state: State) -> list[ScimToken]:
    return await store.tokens(state.db)


async def revoke_token(state: State, token_id: int) -> ScimToken:
    async with state.db.transaction() as tx:
        token = await store.revoke_token(tx, token_id)
        if token is None:
            raise ServiceError(f"no active SCIM token {token_id}")
        await audit.record(tx, audit.CLI, "scim.token.revoke", target_type="scim_token", target_id=token.id,
                           target=token.name)
    return token


async def authenticate(state: State, authorization: str, address: str | None) -> audit.Actor:
    if not state.settings.scim.enabled:
        raise ScimError(404, "SCIM provisioning is not enabled on this server")
    scheme, _, secret = authorization.partition(" ")
    token = await store.token_by_hash(state.db, token_hash(secret.strip())) if scheme.lower() == "bearer" else None
    if token is None:
        raise ScimError(401, "A valid bearer token is required")
    async with state.db.transaction() as tx:
        await store.touch_token(tx, token.id)
    return audit.Actor(name=f"scim:{token.name}", address=address)


# -- reading requests -------------------------------------------------------------------------------------

def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"  # Entra ID's older jobs send "True"/"False"
    raise ScimError(400, f"{name} must be a boolean", "invalidValue")


def _text(value: Any, name: str, *, required: bool = False) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip() and not required):
        if required:
            raise ScimError(400, f"{name} is required", "invalidValue")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise ScimError(400, f"{name} must be a string", "invalidValue")
    if len(value) > 512:
        raise ScimError(400, f"{name} is too long", "invalidValue")
    return value.strip()


def _object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ScimError(400, f"{name} must be an object", "invalidValue")
    return value


def _email_of(value: Any) -> str | None:
    if isinstance(value, str):
        return _text(value, "emails.value")
    if not isinstance(value, list):
        raise ScimError(400, "emails must be a list", "invalidValue")
    chosen = None
    for item in value:
        item = _object(item, "emails[]")
        address = _text(item.get("value"), "emails.value")
        if address and (chosen is None or item.get("primary") in (True, "true", "True")):
            chosen = address
    return chosen


class Attributes(msgspec.Struct, kw_only=True):
    """A user as the flat set of attributes SCIM requests act on."""

    user_name: str | None = None
    external_id: str | None = None
    active: bool = True
    display_name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    title: str | None = None
    department: str | None = None
    manager_id: str | None = None
    email: str | None = None


def _set(attrs: Attributes, path: str, value: Any) -> None:
    """Set (value) or clear (None) one attribute, by its lower-cased SCIM path."""
    if path in READ_ONLY:
        raise ScimError(400, f"{path} is read-only", "mutability")
    if path in IGNORED:
        return
    if path == "username":
        if value is None:
            raise ScimError(400, "userName is required", "invalidValue")
        attrs.user_name = _text(value, "userName", required=True)
    elif path == "externalid":
        attrs.external_id = _text(value, "externalId")
    elif path == "active":
        attrs.active = True if value is None else _bool(value, "active")
    elif path == "displayname":
        attrs.display_name = _text(value, "displayName")
    elif path == "name":
        name = {} if value is None else {k.lower(): v for k, v in _object(value, "name").items()}
        attrs.given_name = _text(name.get("givenname"), "name.givenName")
        attrs.family_name = _text(name.get("familyname"), "name.familyName")
    elif path == "name.givenname":
        attrs.given_name = _text(value, "name.givenName")
    elif path == "name.familyname":
        attrs.family_name = _text(value, "name.familyName")
    elif path == "title":
        attrs.title = _text(value, "title")
    elif path in ("emails", "emails.value") or (path.startswith("emails[") and path.endswith("].value")):
        attrs.email = None if value is None else _email_of(value if path == "emails" else str(value))
    elif path == ENT + "department":
        attrs.department = _text(value, "department")
    elif path in (ENT + "manager", ENT + "manager.value"):
        if isinstance(value, dict):
            value = {k.lower(): v for k, v in value.items()}.get("value")
        attrs.manager_id = _text(value, "manager")
    elif path == ENTERPRISE_SCHEMA.lower():
        for key, item in ({} if value is None else _object(value, ENTERPRISE_SCHEMA)).items():
            _set(attrs, ENT + key.lower(), item)
    else:
        raise ScimError(400, f"unknown attribute {path!r}", "invalidPath")


def _merge(attrs: Attributes, document: dict[str, Any]) -> None:
    """Apply every attribute of a (partial) resource: a PUT body, or a PATCH value without a path."""
    for key, value in document.items():
        _set(attrs, key.lower(), value)


def _from_user(user: ScimUser) -> Attributes:
    return Attributes(user_name=user.user_name, external_id=user.external_id, active=user.active,
                      display_name=user.display_name or None, given_name=user.given_name,
                      family_name=user.family_name, title=user.title, department=user.department,
                      manager_id=user.manager_id, email=user.email)


def _check_schemas(document: dict[str, Any], schema: str) -> None:
    schemas = document.get("schemas")
    if not isinstance(schemas, list) or schema not in schemas:
        raise ScimError(400, f"schemas must include {schema}", "invalidSyntax")


# -- users -------------------------------------------------------------------------------------------------

async def get_user(state: State, resource_id: str) -> ScimUser:
    user = await store.user(state.db, int(resource_id)) if resource_id.isdigit() and len(resource_id) < 20 else None
    if user is None:
        raise ScimError(404, f"User {resource_id} not found")
    return user


def _page(start_index: int | None, count: int | None, maximum: int) -> tuple[int, int]:
    start = max(1, start_index or 1)
    return start - 1, maximum if count is None else max(0, min(count, maximum))


async def list_users(state: State, filter_text: str | None, start_index: int | None,
                     count: int | None) -> tuple[int, int, list[ScimUser]]:
    offset, limit = _page(start_index, count, state.settings.scim.max_results)
    try:
        found_by = scim_filter.parse(filter_text) if filter_text else None
        total, users = await store.find_users(state.db, found_by, offset, limit)
    except scim_filter.FilterError as exc:
        raise ScimError(400, f"invalid filter: {exc}", "invalidFilter") from None
    return total, offset + 1, users


async def create_user(state: State, actor: audit.Actor, document: dict[str, Any]) -> ScimUser:
    _check_schemas(document, USER_SCHEMA)
    attrs = Attributes()
    _merge(attrs, {k: v for k, v in document.items() if k.lower() not in READ_ONLY})
    if not attrs.user_name:
        raise ScimError(400, "userName is required", "invalidValue")
    if await store.user_name_taken(state.db, attrs.user_name):
        raise ScimError(409, f"userName {attrs.user_name} is already in use", "uniqueness")
    email = (attrs.email or (attrs.user_name if "@" in attrs.user_name else "")).lower()
    if email and await account_store.email_taken(state.db, email):
        raise ScimError(409, f"the e-mail address {email} is already in use", "uniqueness")
    claims = {"email": email, "name": _display_name(attrs)}
    account = await oidc.create_account(state, claims, await oidc.free_username(state, attrs.user_name))
    now = now_iso()
    async with state.db.transaction() as tx:
        await store.insert_user(tx, ScimUser(
            account_id=account.id, user_name=attrs.user_name, external_id=attrs.external_id, active=True,
            given_name=attrs.given_name, family_name=attrs.family_name, department=attrs.department,
            title=attrs.title, manager_id=attrs.manager_id, created_at=now, updated_at=now, version=1))
        await audit.record(tx, actor, "scim.user.create", target_type="account", target_id=account.id,
                           target=account.acct, detail={"userName": attrs.user_name,
                                                        "externalId": attrs.external_id})
    await _apply_profile(state, account, attrs)
    if not attrs.active:
        await lifecycle.suspend(state, account, actor, origin="scim", reason="created inactive")
    return await get_user(state, str(account.id))


def _display_name(attrs: Attributes) -> str:
    return attrs.display_name or " ".join(p for p in (attrs.given_name, attrs.family_name) if p) or ""


async def _apply_profile(state: State, account: Account, attrs: Attributes) -> None:
    manager = None
    if attrs.manager_id and attrs.manager_id.isdigit() and len(attrs.manager_id) < 20:
        found = await account_store.get(state.db, int(attrs.manager_id))
        manager = (found.display_name or found.username) if found is not None else None
    values = {"Department": attrs.department, "Title": attrs.title, "Manager": manager}
    await oidc.set_profile(state, account, _display_name(attrs) or None, values)


async def replace_user(state: State, actor: audit.Actor, resource_id: str, document: dict[str, Any]) -> ScimUser:
    """PUT: the resource as sent (Okta deactivates with a PUT whose `active` is false)."""
    _check_schemas(document, USER_SCHEMA)
    user = await get_user(state, resource_id)
    if "id" in document and str(document["id"]) != resource_id:
        raise ScimError(400, "id cannot be changed", "mutability")
    attrs = Attributes()
    _merge(attrs, {k: v for k, v in document.items() if k.lower() not in READ_ONLY})
    return await _save_user(state, actor, user, attrs, "scim.user.replace")


async def patch_user(state: State, actor: audit.Actor, resource_id: str, document: dict[str, Any]) -> ScimUser:
    user = await get_user(state, resource_id)
    attrs = _from_user(user)
    for op, path, value in _operations(document):
        if path is None:
            if op == "remove":
                raise ScimError(400, "remove needs a path", "noTarget")
            _merge(attrs, _object(value, "value"))
        elif op == "remove":
            _set(attrs, path, None)
        else:
            _set(attrs, path, value)
    return await _save_user(state, actor, user, attrs, "scim.user.patch")


def _operations(document: dict[str, Any]) -> list[tuple[str, str | None, Any]]:
    _check_schemas(document, PATCH_SCHEMA)
    ops = document.get("Operations", document.get("operations"))
    if not isinstance(ops, list) or not ops:
        raise ScimError(400, "Operations must be a non-empty list", "invalidSyntax")
    out = []
    for item in ops:
        item = {k.lower(): v for k, v in _object(item, "Operations[]").items()}
        op = item.get("op")
        if not isinstance(op, str) or op.lower() not in ("add", "replace", "remove"):
            raise ScimError(400, "op must be add, replace or remove", "invalidSyntax")
        path = item.get("path")
        if path is not None and (not isinstance(path, str) or not path.strip()):
            raise ScimError(400, "path must be a string", "invalidPath")
        out.append((op.lower(), path.strip().lower() if path else None, item.get("value")))
    return out


async def _save_user(state: State, actor: audit.Actor, user: ScimUser, attrs: Attributes, action: str) -> ScimUser:
    if not attrs.user_name:
        raise ScimError(400, "userName is required", "invalidValue")
    if attrs.user_name.lower() != user.user_name.lower() and await store.user_name_taken(
            state.db, attrs.user_name, other_than=user.account_id):
        raise ScimError(409, f"userName {attrs.user_name} is already in use", "uniqueness")
    email = (attrs.email or "").lower()
    if email and email != user.email.lower() and await account_store.email_taken(state.db, email):
        raise ScimError(409, f"the e-mail address {email} is already in use", "uniqueness")
    changes = {name: getattr(attrs, name) for name in ("user_name", "external_id", "given_name", "family_name",
                                                       "department", "title", "manager_id")
               if getattr(attrs, name) != getattr(user, name)}
    account = await lifecycle.account_or_404(state, user.account_id)
    async with state.db.transaction() as tx:
        if changes or attrs.active != user.active:
            await store.update_user(tx, user.account_id, {**changes, "active": attrs.active})
        if email and email != user.email.lower():
            await store.set_email(tx, user.account_id, email)
        await audit.record(tx, actor, action, target_type="account", target_id=user.account_id, target=account.acct,
                           detail={"changed": sorted(changes) + (["active"] if attrs.active != user.active else [])
                                   + (["email"] if email and email != user.email.lower() else [])})
    await _apply_profile(state, account, attrs)
    if attrs.active != user.active or attrs.active == bool(account.suspended):
        account = await lifecycle.account_or_404(state, user.account_id)
        if not attrs.active:
            await lifecycle.suspend(state, account, actor, origin="scim", reason="deactivated by the provider")
        else:
            moderation = (await identity_store.moderation_of(state.db, [account.id]))[account.id]
            if moderation.suspension_origin in ("scim", "sso"):
                await lifecycle.unsuspend(state, account, actor, origin="scim")
    return await get_user(state, str(user.account_id))


async def delete_user(state: State, actor: audit.Actor, resource_id: str) -> None:
    user = await get_user(state, resource_id)
    account = await lifecycle.account_or_404(state, user.account_id)
    await lifecycle.delete(state, account, actor, origin="scim")


# -- groups ----------------------------------------------------------------------------------------------

async def get_group(state: State, resource_id: str) -> ScimGroup:
    group = await store.group(state.db, int(resource_id)) if resource_id.isdigit() and len(resource_id) < 20 else None
    if group is None:
        raise ScimError(404, f"Group {resource_id} not found")
    return group


async def list_groups(state: State, filter_text: str | None, start_index: int | None, count: int | None,
                      with_members: bool) -> tuple[int, int, list[ScimGroup]]:
    offset, limit = _page(start_index, count, state.settings.scim.max_results)
    try:
        found_by = scim_filter.parse(filter_text) if filter_text else None
        total, groups = await store.find_groups(state.db, found_by, offset, limit, with_members)
    except scim_filter.FilterError as exc:
        raise ScimError(400, f"invalid filter: {exc}", "invalidFilter") from None
    return total, offset + 1, groups


async def _member_ids(state: State, value: Any) -> set[int]:
    items = value if isinstance(value, list) else [value]
    ids = set()
    for item in items:
        ref = {k.lower(): v for k, v in _object(item, "members[]").items()}.get("value")
        text = str(ref) if isinstance(ref, int | str) and not isinstance(ref, bool) else ""
        if not text.isdigit() or len(text) > 19:
            raise ScimError(400, f"members: {ref!r} is not a user id", "invalidValue")
        ids.add(int(text))
    missing = ids - await store.existing_accounts(state.db, ids)
    if missing:
        raise ScimError(400, f"members: no user {min(missing)}", "invalidValue")
    return ids


async def create_group(state: State, actor: audit.Actor, document: dict[str, Any]) -> ScimGroup:
    _check_schemas(document, GROUP_SCHEMA)
    doc = {k.lower(): v for k, v in document.items()}
    name = _text(doc.get("displayname"), "displayName", required=True)
    assert name is not None
    if await store.group_name_taken(state.db, name):
        raise ScimError(409, f"a group named {name} exists already", "uniqueness")
    members = await _member_ids(state, doc.get("members") or [])
    async with state.db.transaction() as tx:
        group_id = await store.insert_group(tx, name, _text(doc.get("externalid"), "externalId"))
        await store.add_members(tx, group_id, members)
        await audit.record(tx, actor, "scim.group.create", target_type="scim_group", target_id=group_id,
                           target=name, detail={"members": len(members)})
    await _recheck_roles(state, actor, members)
    return await get_group(state, str(group_id))


async def replace_group(state: State, actor: audit.Actor, resource_id: str, document: dict[str, Any]) -> ScimGroup:
    _check_schemas(document, GROUP_SCHEMA)
    group = await get_group(state, resource_id)
    doc = {k.lower(): v for k, v in document.items()}
    name = _text(doc.get("displayname"), "displayName", required=True)
    assert name is not None
    members = await _member_ids(state, doc.get("members") or [])
    return await _save_group(state, actor, group, name, _text(doc.get("externalid"), "externalId"), members,
                             "scim.group.replace")


async def patch_group(state: State, actor: audit.Actor, resource_id: str, document: dict[str, Any]) -> ScimGroup:
    group = await get_group(state, resource_id)
    name, external_id = group.display_name, group.external_id
    members = {m for m, _ in group.members}
    for op, path, value in _operations(document):
        if path is None:
            if op == "remove":
                raise ScimError(400, "remove needs a path", "noTarget")
            for key, item in _object(value, "value").items():  # Okta's rename: {"id": …, "displayName": …}
                key = key.lower()
                if key == "id":
                    if str(item) != resource_id:
                        raise ScimError(400, "id cannot be changed", "mutability")
                elif key == "displayname":
                    name = _text(item, "displayName", required=True) or name
                elif key == "externalid":
                    external_id = _text(item, "externalId")
                elif key == "members":
                    members = members | await _member_ids(state, item) if op == "add" else await _member_ids(state, item)
                elif key != "schemas":
                    raise ScimError(400, f"unknown attribute {key!r}", "invalidPath")
        elif path == "members":
            if op == "add":
                members |= await _member_ids(state, value)
            elif op == "replace":
                members = await _member_ids(state, value or [])
            else:
                members = members - await _member_ids(state, value) if value else set()  # Entra: Remove with value
        elif path.startswith("members[") and path.endswith("]"):
            try:
                node = scim_filter.parse(path[len("members["):-1])
            except scim_filter.FilterError as exc:
                raise ScimError(400, f"invalid path filter: {exc}", "invalidPath") from None
            if not (isinstance(node, scim_filter.Compare) and node.path == "value" and node.op == "eq"):
                raise ScimError(400, "only members[value eq \"…\"] is supported", "invalidPath")
            if op != "remove":
                raise ScimError(400, "a filtered members path can only be removed", "invalidPath")
            members.discard(int(str(node.value))) if str(node.value).isdigit() else None
        elif path == "displayname":
            if op == "remove":
                raise ScimError(400, "displayName is required", "invalidValue")
            name = _text(value, "displayName", required=True) or name
        elif path == "externalid":
            external_id = None if op == "remove" else _text(value, "externalId")
        elif path in READ_ONLY:
            raise ScimError(400, f"{path} is read-only", "mutability")
        else:
            raise ScimError(400, f"unknown attribute {path!r}", "invalidPath")
    return await _save_group(state, actor, group, name, external_id, members, "scim.group.patch")


async def _save_group(state: State, actor: audit.Actor, group: ScimGroup, name: str, external_id: str | None,
                      members: set[int], action: str) -> ScimGroup:
    if name.lower() != group.display_name.lower() and await store.group_name_taken(state.db, name, group.id):
        raise ScimError(409, f"a group named {name} exists already", "uniqueness")
    before = {m for m, _ in group.members}
    async with state.db.transaction() as tx:
        changes = {k: v for k, v in (("display_name", name), ("external_id", external_id))
                   if v != getattr(group, k)}
        if changes:
            await store.update_group(tx, group.id, changes)
        elif members != before:
            await store.touch_group(tx, group.id)
        await store.remove_members(tx, group.id, before - members)
        await store.add_members(tx, group.id, members - before)
        await audit.record(tx, actor, action, target_type="scim_group", target_id=group.id, target=name,
                           detail={"added": len(members - before), "removed": len(before - members),
                                   "changed": sorted(changes)})
    await _recheck_roles(state, actor, before ^ members if not changes else before | members)
    return await get_group(state, str(group.id))


async def delete_group(state: State, actor: audit.Actor, resource_id: str) -> None:
    group = await get_group(state, resource_id)
    async with state.db.transaction() as tx:
        members = await store.delete_group(tx, group.id)
        await audit.record(tx, actor, "scim.group.delete", target_type="scim_group", target_id=group.id,
                           target=group.display_name)
    await _recheck_roles(state, actor, set(members))


async def _recheck_roles(state: State, actor: audit.Actor, account_ids: set[int]) -> None:
    """Groups carry roles (until Crosstalk has groups of its own): recompute them for these members."""
    cfg = state.settings.scim
    if not (cfg.admin_groups or cfg.moderator_groups):
        return
    for account_id in account_ids:
        account = await account_store.get(state.db, account_id)
        if account is None or not account.local or account.deleted_at is not None:
            continue
        keys = await store.group_keys_of(state.db, account_id)
        role = oidc.role_from_groups(keys, cfg.admin_groups, cfg.moderator_groups)
        await lifecycle.set_role(state, account, role, actor, source="scim")


"""SCIM resources (RFC 7643) and the discovery documents. Pure: records in, JSON out."""

from __future__ import annotations

from typing import Any

from server.domain.identity import ScimGroup, ScimUser

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
ALWAYS = {"id", "schemas", "meta"}


def user_json(base: str, u: ScimUser) -> dict[str, Any]:
    name = {k: v for k, v in (("givenName", u.given_name), ("familyName", u.family_name)) if v}
    if name:
        name["formatted"] = " ".join(v for v in (u.given_name, u.family_name) if v)
    doc: dict[str, Any] = {
        "schemas": [USER, ENTERPRISE],
        "id": str(u.account_id),
        "externalId": u.external_id,
        "userName": u.user_name,
        "name": name,
        "displayName": u.display_name or None,
        "nickName": u.username,  # the Crosstalk handle, chosen once
        "emails": [{"value": u.email, "type": "work", "primary": True}] if u.email else [],
        "title": u.title,
        "active": u.active,
        ENTERPRISE: {k: v for k, v in (("department", u.department),
                                       ("manager", {"value": u.manager_id} if u.manager_id else None)) if v},
        "meta": {"resourceType": "User", "created": u.created_at, "lastModified": u.updated_at,
                 "location": f"{base}/Users/{u.account_id}", "version": f'W/"{u.version}"'},
    }
    return {k: v for k, v in doc.items() if v is not None and v != {}}


def group_json(base: str, g: ScimGroup, with_members: bool = True) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schemas": [GROUP],
        "id": str(g.id),
        "displayName": g.display_name,
        "meta": {"resourceType": "Group", "created": g.created_at, "lastModified": g.updated_at,
                 "location": f"{base}/Groups/{g.id}", "version": f'W/"{g.version}"'},
    }
    if g.external_id:
        doc["externalId"] = g.external_id
    if with_members:
        doc["members"] = [{"value": str(account_id), "display": user_name or None, "$ref": f"{base}/Users/{account_id}",
                           "type": "User"} for account_id, user_name in g.members]
    return doc


def project(doc: dict[str, Any], attributes: list[str], excluded: list[str]) -> dict[str, Any]:
    """`attributes` / `excludedAttributes` (RFC 7644 §3.9): top-level names, case-insensitive; an
    extension's attribute (urn:…:User:department) selects from that extension."""
    def top(name: str) -> str:
        lowered = name.lower()
        if lowered.startswith(ENTERPRISE.lower() + ":"):
            return ENTERPRISE.lower()
        return lowered.split(".", 1)[0]
    if attributes:
        wanted = {top(a) for a in attributes} | ALWAYS
        return {k: v for k, v in doc.items() if k.lower() in wanted}
    if excluded:
        unwanted = {top(a) for a in excluded} - ALWAYS
        return {k: v for k, v in doc.items() if k.lower() not in unwanted}
    return doc


def list_json(resources: list[dict[str, Any]], total: int, start_index: int) -> dict[str, Any]:
    return {"schemas": [LIST], "totalResults": total, "startIndex": start_index, "itemsPerPage": len(resources),
            "Resources": resources}


def error_json(status: int, detail: str, scim_type: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = {"schemas": [ERROR], "status": str(status), "detail": detail}
    if scim_type:
        doc["scimType"] = scim_type
    return doc


def service_provider_config(base: str, max_results: int) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": "https://datatracker.ietf.org/doc/html/rfc7644",
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": max_results},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": False},
        "authenticationSchemes": [{"type": "oauthbearertoken", "name": "OAuth Bearer Token", "primary": True,
                                   "description": "A token from `crosstalk admin scim-token create`"}],
        "meta": {"resourceType": "ServiceProviderConfig", "location": f"{base}/ServiceProviderConfig"},
    }


def resource_types(base: str) -> list[dict[str, Any]]:
    return [
        {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"], "id": "User", "name": "User",
         "endpoint": "/Users", "description": "A person, with a Crosstalk account", "schema": USER,
         "schemaExtensions": [{"schema": ENTERPRISE, "required": False}],
         "meta": {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/User"}},
        {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"], "id": "Group", "name": "Group",
         "endpoint": "/Groups", "description": "A group; groups named in the settings carry roles", "schema": GROUP,
         "meta": {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/Group"}},
    ]


def _attr(name: str, kind: str = "string", *, required: bool = False, multi: bool = False,
          mutability: str = "readWrite", unique: str = "none", case_exact: bool = False,
          sub: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": name, "type": kind, "multiValued": multi, "required": required,
                           "caseExact": case_exact, "mutability": mutability, "returned": "default",
                           "uniqueness": unique, "description": name}
    if sub:
        doc["subAttributes"] = sub
    return doc


def schemas(base: str) -> list[dict[str, Any]]:
    user_attrs = [
        _attr("userName", required=True, unique="server"),
        _attr("name", "complex", sub=[_attr("formatted", mutability="readOnly"), _attr("givenName"),
                                      _attr("familyName")]),
        _attr("displayName"), _attr("nickName", mutability="readOnly"), _attr("title"),
        _attr("emails", "complex", multi=True, sub=[_attr("value"), _attr("type"), _attr("primary", "boolean")]),
        _attr("active", "boolean"), _attr("externalId", case_exact=True),
    ]
    group_attrs = [
        _attr("displayName", required=True, unique="server"), _attr("externalId", case_exact=True),
        _attr("members", "complex", multi=True, sub=[_attr("value", mutability="immutable"),
                                                     _attr("display", mutability="readOnly")]),
    ]
    enterprise_attrs = [_attr("department"),
                        _attr("manager", "complex", sub=[_attr("value"), _attr("displayName", mutability="readOnly")])]
    out = []
    for schema_id, name, attrs in ((USER, "User", user_attrs), (GROUP, "Group", group_attrs),
                                   (ENTERPRISE, "EnterpriseUser", enterprise_attrs)):
        out.append({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"], "id": schema_id, "name": name,
                    "description": name, "attributes": attrs,
                    "meta": {"resourceType": "Schema", "location": f"{base}/Schemas/{schema_id}"}})
    return out

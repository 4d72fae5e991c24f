"""WebFinger, host-meta and NodeInfo: how other servers find us and our accounts."""

from __future__ import annotations

from aiohttp import web

from federation import documents as docs
from server.http.base import add_routes, json_response, state_of
from server.storage import accounts as account_store
from server.version import VERSION


async def webfinger(request: web.Request) -> web.Response:
    st = state_of(request)
    resource = request.query.get("resource", "").strip()
    if not resource:
        return json_response({"error": "resource parameter is required"}, status=400)
    try:
        parsed = docs.parse_webfinger_resource(resource, st.domain)
    except ValueError:
        return json_response({"error": "invalid resource"}, status=400)
    if parsed is None:
        return json_response({"error": "Record not found"}, status=404)
    kind, value = parsed
    account = None
    if kind == "acct":
        account = await account_store.by_username(st.db, value)
    else:
        account = await account_store.by_uri(st.db, value) or await account_store.by_profile_url(st.db, value)
    if account is None or not account.local:
        return json_response({"error": "Record not found"}, status=404)
    if account.deleted_at is not None or account.suspended:
        return json_response({"error": "Gone"}, status=410)
    jrd = docs.webfinger_jrd(account.username, st.domain, account.uri, account.url)
    return json_response(jrd, content_type=docs.JRD_JSON)


async def host_meta(request: web.Request) -> web.Response:
    st = state_of(request)
    if request.path.endswith(".json"):
        return json_response({"links": [{"rel": "lrdd", "template": f"{st.base_url}/.well-known/webfinger?resource={{uri}}"}]})
    return web.Response(text=docs.host_meta_xrd(st.base_url), content_type="application/xrd+xml")


async def nodeinfo_links(request: web.Request) -> web.Response:
    return json_response(docs.nodeinfo_links(state_of(request).base_url))


async def nodeinfo(request: web.Request) -> web.Response:
    st = state_of(request)
    version = request.match_info["version"]
    if version not in ("2.0", "2.1"):
        return json_response({"error": "Record not found"}, status=404)
    usage = await account_store.usage_counts(st.db)
    metadata = {"nodeName": st.config["instance.title"], "nodeDescription": st.config["instance.description"]}
    if st.boundary is not None:  # the federation mode, and partner policies the admin chose to publish
        metadata.update(await st.boundary.published_policy())
    doc = docs.nodeinfo(version, VERSION, usage["users"], usage["active_month"], usage["active_halfyear"],
                        usage["posts"], st.config["registrations"] != "closed", metadata)
    profile = f'http://nodeinfo.diaspora.software/ns/schema/{version}#'
    return json_response(doc, content_type="application/json", headers={"Link": f'<{profile}>; rel="profile"'})


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("GET", "/.well-known/webfinger", webfinger),
        ("GET", "/.well-known/host-meta", host_meta),
        ("GET", "/.well-known/host-meta.json", host_meta),
        ("GET", "/.well-known/nodeinfo", nodeinfo_links),
        ("GET", "/nodeinfo/{version}", nodeinfo),
    ])

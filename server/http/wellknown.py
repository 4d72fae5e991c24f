"""WebFinger, host-meta and NodeInfo: how other servers find us and our accounts."""

from __future__ import annotations

from typing import Literal

from aiohttp import web

from federation import documents as docs
from server.http.base import add_routes, json_response, state_of
from server.services.errors import Gone, NotFound
from server.services.federation import serving
from server.version import MASTODON_COMPAT, SOURCE_URL, VERSION


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
    try:
        account, page = await serving.webfinger_account(st, kind, value)
    except NotFound:
        return json_response({"error": "Record not found"}, status=404)
    except Gone:
        return json_response({"error": "Gone"}, status=410)
    # The instance actor answers under one subject, its preferredUsername: peers check that they match.
    if account.id == st.remote.instance_actor_id:
        jrd = docs.webfinger_jrd(docs.instance_actor_username(st.domain), st.domain, account.uri, page)
    else:
        jrd = docs.webfinger_jrd(account.username, st.domain, account.uri, page)
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
    match request.match_info["version"]:
        case "2.0":
            version: Literal["2.0", "2.1"] = "2.0"
        case "2.1":
            version = "2.1"
        case _:
            return json_response({"error": "Record not found"}, status=404)
    usage = await serving.usage_counts(st)
    metadata: dict[str, object] = {
        "nodeName": st.settings.instance.title, "nodeDescription": st.settings.instance.description,
        # We name ourselves in software.name; client libraries that pick an API dialect from NodeInfo
        # (megalodon, used by Whalebird and Fedistar) refuse names they do not know, unless
        # metadata.upstream.name says which API the server speaks (as Mastodon forks such as kmyblue do).
        "upstream": {"name": "mastodon", "version": MASTODON_COMPAT},
    }
    if st.boundary is not None:  # the federation mode, and partner policies the admin chose to publish
        metadata.update(await st.boundary.published_policy())
    doc = docs.nodeinfo(version, VERSION, usage["users"], usage["active_month"], usage["active_halfyear"],
                        usage["posts"], st.settings.registrations != "closed", metadata,
                        repository=SOURCE_URL, homepage=SOURCE_URL)
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

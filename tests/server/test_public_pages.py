"""Public profile and post pages: server-rendered, no scripts, the meta tags link previews read, rel="me"
on profile field links, and nothing that is not public."""

from __future__ import annotations

import io
from html.parser import HTMLParser

import pytest
import requests
from PIL import Image

HTML = {"Accept": "text/html"}


class Page(HTMLParser):
    """What a link-preview bot or rel="me" checker reads from a page."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}
        self.links: list[dict[str, str]] = []
        self.anchors: list[dict[str, str]] = []
        self.images: list[dict[str, str]] = []
        self.tags: list[str] = []
        self.title = ""
        self._in_title = False
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        if tag == "meta" and ("property" in a or "name" in a):
            self.meta[a.get("property") or a["name"]] = a.get("content", "")
        elif tag == "link":
            self.links.append(a)
        elif tag == "a":
            self.anchors.append(a)
        elif tag == "img":
            self.images.append(a)
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        self.text.append(data)

    def link(self, rel: str, type_: str | None = None) -> str:
        return next(ln["href"] for ln in self.links if ln.get("rel") == rel and (type_ is None or ln.get("type") == type_))

    @property
    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def png_bytes(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def site(instance):
    instance.create_user("alice")
    instance.create_user("bob")
    return instance, {"Authorization": f"Bearer {instance.token('alice')}"}, {"Authorization": f"Bearer {instance.token('bob')}"}


def _post(base: str, auth: dict[str, str], **body: object) -> dict:
    r = requests.post(f"{base}/api/v1/statuses", json=body, headers=auth, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_profile_page_shows_the_public_profile_and_only_public_posts(site):
    inst, alice, bob = site
    base = inst.base_url
    r = requests.patch(f"{base}/api/v1/accounts/update_credentials", headers=alice, timeout=10, data={
        "display_name": "Al <script>alert(1)</script>",
        "note": "Works on the \"widgets\" team. https://alice.example.net/about",
        "fields_attributes[0][name]": "Website", "fields_attributes[0][value]": "https://alice.example.net",
        "fields_attributes[1][name]": "Desk <b>", "fields_attributes[1][value]": "3rd floor",
    }, files={"avatar": ("a.png", png_bytes((200, 30, 30)), "image/png")})
    assert r.status_code == 200, r.text
    avatar = r.json()["avatar"]

    shown = _post(base, alice, status="Visible to the world, with <b>markup</b> typed by hand")
    hidden = {
        "unlisted": _post(base, alice, status="quietly unlisted", visibility="unlisted"),
        "private": _post(base, alice, status="for followers only", visibility="private"),
        "direct": _post(base, alice, status="@bob a secret", visibility="direct"),
        "local-only": _post(base, alice, status="inside the organisation only", local_only=True),
    }
    bob_post = _post(base, bob, status="bob's own post")
    reblog = requests.post(f"{base}/api/v1/statuses/{bob_post['id']}/reblog", headers=alice, timeout=10)
    assert reblog.status_code == 200

    for url, headers in [(f"{base}/@alice", {}), (f"{base}/users/alice", HTML), (f"{base}/@alice/", {})]:
        r = requests.get(url, headers=headers, timeout=10)
        assert r.status_code == 200, (url, r.text)
        assert r.headers["Content-Type"].startswith("text/html")
        assert "script-src" not in r.headers["Content-Security-Policy"] and "default-src 'none'" in r.headers["Content-Security-Policy"]
        page = Page(r.text)
        assert "script" not in page.tags, "no scripts, escaped or not"
        assert page.title.startswith("Al <script>alert(1)</script> (@alice@")
        assert "<script>alert(1)</script>" not in r.text and "&lt;script&gt;" in r.text
        assert page.meta["og:type"] == "profile"
        assert page.meta["og:title"] == f"Al <script>alert(1)</script> (@alice@{inst.domain})"
        assert page.meta["og:url"] == f"{base}/@alice" == page.link("canonical")
        assert page.meta["og:image"] == avatar and any(i["src"] == avatar for i in page.images)
        assert page.meta["description"].startswith('Works on the "widgets" team.')
        assert page.meta["profile:username"] == f"alice@{inst.domain}"
        assert page.meta["twitter:card"] == "summary"
        assert page.link("alternate", "application/activity+json") == f"{base}/users/alice"
        assert "robots" not in page.meta
        # rel="me" on the profile field links: what a linked site checks to confirm the profile is its owner's
        website = next(a for a in page.anchors if a.get("href") == "https://alice.example.net")
        assert "me" in website["rel"].split() and "nofollow" in website["rel"].split()
        bio_link = next(a for a in page.anchors if a.get("href") == "https://alice.example.net/about")
        assert "me" not in bio_link["rel"].split()
        text = page.all_text
        assert "Desk <b>" in text and "3rd floor" in text
        assert "Visible to the world, with <b>markup</b> typed by hand" in text
        assert any(a.get("href") == shown["url"] for a in page.anchors)
        for post in hidden.values():
            assert post["content"] not in r.text and post["id"] not in r.text
        assert "bob's own post" not in text, "boosts are not the account's posts"

    # An account that opted out of discovery asks search engines not to index its pages.
    requests.patch(f"{base}/api/v1/accounts/update_credentials", headers=alice, data={"discoverable": "false"}, timeout=10)
    assert Page(requests.get(f"{base}/@alice", timeout=10).text).meta["robots"] == "noindex, noarchive"
    assert requests.get(f"{base}/@nobody", timeout=10).status_code == 404


def test_post_pages_for_public_posts_only(site):
    inst, alice, _bob = site
    base = inst.base_url
    media = requests.post(f"{base}/api/v2/media", headers=alice, timeout=10, data={"description": "A red square"},
                          files={"file": ("p.png", png_bytes((220, 20, 20)), "image/png")}).json()
    pictured = _post(base, alice, status="Look at this", media_ids=[media["id"]], language="en")
    warned = _post(base, alice, status="the spoiler itself", spoiler_text="Film ending")
    private = _post(base, alice, status="not for the web", visibility="private")
    reply = _post(base, alice, status="replying to the private one", in_reply_to_id=private["id"])

    r = requests.get(pictured["url"], timeout=10)
    assert r.status_code == 200 and r.headers["Vary"] == "Accept"
    page = Page(r.text)
    assert "script" not in page.tags
    assert page.meta["og:type"] == "article"
    assert page.meta["og:url"] == pictured["url"] == page.link("canonical")
    assert page.link("alternate", "application/activity+json") == pictured["uri"]
    assert page.meta["og:description"] == "Look at this"
    assert page.meta["og:image"] == media["url"] and page.meta["og:image:alt"] == "A red square"
    assert page.meta["twitter:card"] == "summary_large_image"
    assert page.meta["article:published_time"] == pictured["created_at"]
    assert any(i.get("alt") == "A red square" for i in page.images)
    assert f"@alice@{inst.domain}" in page.all_text
    assert 'lang="en"' in r.text
    # The same page through the ActivityPub URL when a browser asks for it
    assert requests.get(pictured["uri"], headers=HTML, timeout=10).text == r.text

    cw = Page(requests.get(warned["url"], timeout=10).text)
    assert cw.meta["og:description"] == "Content warning: Film ending"
    assert "summary" in cw.tags and "details" in cw.tags
    assert cw.meta["og:image"].endswith("/static/avatar.png") or "/media/" in cw.meta["og:image"]

    # A reply to a post that is not public links nowhere; the private post itself has no page.
    replied = requests.get(reply["url"], timeout=10)
    assert replied.status_code == 200 and private["url"] not in replied.text and private["id"] not in replied.text
    for status in (private,):
        assert requests.get(status["url"], timeout=10).status_code == 404
        assert requests.get(status["uri"], headers=HTML, timeout=10).status_code == 404
    assert requests.get(f"{base}/@alice/9223372036854775808", timeout=10).status_code == 404


def test_profile_pages_page_back_through_older_posts(site):
    inst, alice, _bob = site
    posts = [_post(inst.base_url, alice, status=f"post number {n}") for n in range(23)]
    first = Page(requests.get(f"{inst.base_url}/@alice", timeout=10).text)
    older = next(a["href"] for a in first.anchors if a.get("rel") == "next")
    assert "post number 22" in first.all_text and "post number 2 " not in first.all_text + " "
    second = Page(requests.get(older, timeout=10).text)
    assert [f"post number {n}" in second.all_text for n in (0, 1, 2)] == [True, True, True]
    assert "post number 3 " not in second.all_text + " " and not any(a.get("rel") == "next" for a in second.anchors)
    assert posts


def test_public_pages_can_be_turned_off(make_instance):
    inst = make_instance("closed", env={"CROSSTALK_WEB_PUBLIC_PAGES": "false"})
    inst.create_user("carol")
    post = _post(inst.base_url, {"Authorization": f"Bearer {inst.token('carol')}"}, status="hello")
    assert requests.get(f"{inst.base_url}/@carol", timeout=10).status_code == 404
    assert requests.get(post["url"], timeout=10).status_code == 404
    assert requests.get(f"{inst.base_url}/", timeout=10).status_code == 200

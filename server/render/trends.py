"""Trending tags, links and posts as Mastodon renders them (Tag, PreviewCard with history, and the
admin variants of /api/v1/admin/trends/*). Pure: takes what services/trends.py computed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from server.domain.trends import LinkTrend, TagTrend, Usage


def history_json(usage: Usage) -> list[dict[str, str]]:
    """Mastodon's history: one entry a day, newest first, the day as midnight UTC in Unix time."""
    return [{"day": str(int(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp())),
             "uses": str(uses), "accounts": str(accounts)} for day, uses, accounts in usage]


def trending_tag_json(base_url: str, tag: TagTrend, following: set[int] | None) -> dict[str, Any]:
    data: dict[str, Any] = {"id": str(tag.id), "name": tag.name,
                            "url": f"{base_url}/tags/{quote(tag.name.lower())}", "history": history_json(tag.history)}
    if following is not None:
        data["following"] = tag.id in following
    return data


def link_json(link: LinkTrend) -> dict[str, Any]:
    """A PreviewCard for the link. Pages are not fetched for a preview: the title is the address."""
    parts = urlsplit(link.url)
    return {"url": link.url, "title": link.url, "description": "", "language": None, "type": "link",
            "author_name": "", "author_url": "", "authors": [], "provider_name": parts.hostname or "",
            "provider_url": f"{parts.scheme}://{parts.netloc}", "html": "", "width": 0, "height": 0, "image": None,
            "image_description": "", "embed_url": "", "blurhash": None, "published_at": None,
            "history": history_json(link.history)}


def admin_tag_json(base_url: str, tag: TagTrend) -> dict[str, Any]:
    data = trending_tag_json(base_url, tag, None)
    data.update({"trendable": not tag.rejected, "usable": True, "listable": True,
                 "requires_review": False})
    return data


def admin_link_json(link: LinkTrend) -> dict[str, Any]:
    data = link_json(link)
    data.update({"id": str(link.id), "trendable": not link.rejected, "requires_review": False})
    return data

"""A forum-style peer that federates groups the way FEP-1b12 describes and Lemmy does (its documented
federation: communities are `Group` actors at /c/NAME, users are `Person` actors at /u/NAME, posts are
`Page` objects with `audience` set to the community):

- a Follow of the community is answered with an Accept (from the community);
- a new post is announced twice to every follower: `Announce{Create{Page}}` (the FEP's wrapped form)
  and the compatibility `Announce{Page}` that Mastodon understands;
- a member of the community joins a group elsewhere by following it, and reads what that group
  announces from its inbox.

Transport and signatures (draft-cavage, checked with `httpsig`) come from the GoToSocial-style peer.
"""

from __future__ import annotations

from typing import Any

from tests.federation_e2e.gts_peer import PUBLIC, GtsPeer, PeerActor


class ForumPeer(GtsPeer):
    def __init__(self) -> None:
        super().__init__(usernames=())
        self.member = self.add_actor("/u/lemmy_user", "lemmy_user")
        self.community = self.add_actor("/c/forum", "forum", actor_type="Group")
        self.followers: list[str] = []  # inboxes of the community's followers
        self._answered: set[str] = set()

    def accept_follows(self) -> int:
        """Accept every Follow of the community received so far; returns how many are accepted."""
        for path, activity in list(self.received):
            if activity.get("type") != "Follow" or path != "/c/forum/inbox" or activity["id"] in self._answered:
                continue
            follower = self.get(activity["actor"]).json()
            inbox = (follower.get("endpoints") or {}).get("sharedInbox") or follower["inbox"]
            accept = {"@context": "https://www.w3.org/ns/activitystreams", "type": "Accept",
                      "id": f"{self.community.uri}/accepts/{len(self._answered)}", "actor": self.community.uri,
                      "object": activity}
            assert self.post(self.community, follower["inbox"], accept).status_code in (200, 202)
            self._answered.add(activity["id"])
            if inbox not in self.followers:
                self.followers.append(inbox)
        return len(self._answered)

    def publish(self, number: int, title: str, html: str) -> dict[str, Any]:
        """A member's new post, announced by the community in both forms."""
        page = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{self.base}/post/{number}",
                "type": "Page", "attributedTo": self.member.uri, "name": title, "content": html,
                "mediaType": "text/html", "to": [self.community.uri, PUBLIC], "cc": [],
                "audience": self.community.uri, "published": "2026-01-01T12:00:00Z",
                "url": f"{self.base}/post/{number}"}
        self.documents[f"/post/{number}"] = page
        create = {"@context": "https://www.w3.org/ns/activitystreams", "type": "Create",
                  "id": f"{self.base}/activities/create/{number}", "actor": self.member.uri,
                  "to": page["to"], "cc": [], "audience": self.community.uri, "object": page}
        for inbox in self.followers:
            for kind, inner in (("create", create), ("page", page)):
                announce = {"@context": "https://www.w3.org/ns/activitystreams", "type": "Announce",
                            "id": f"{self.base}/activities/announce/{kind}/{number}", "actor": self.community.uri,
                            "to": [PUBLIC], "cc": [f"{self.community.uri}/followers"], "object": inner}
                response = self.post(self.community, inbox, announce)
                assert response.status_code in (200, 202), response.text
        return page

    def join(self, group_uri: str) -> None:
        group = self.get(group_uri).json()
        follow = {"@context": "https://www.w3.org/ns/activitystreams", "type": "Follow",
                  "id": f"{self.member.uri}/follows/1", "actor": self.member.uri, "object": group_uri}
        response = self.post(self.member, group["inbox"], follow)
        assert response.status_code in (200, 202), response.text

    def announces_to(self, actor: PeerActor) -> list[dict[str, Any]]:
        path = actor.inbox.removeprefix(self.base)
        with self._lock:
            return [a for p, a in self.received if p == path and a.get("type") == "Announce"]

    def like(self, number: int, object_uri: str, content: str | None = None) -> dict[str, Any]:
        """The member's Like of a post (Lemmy's upvote; with `content`, Misskey's emoji reaction)."""
        like = {"@context": "https://www.w3.org/ns/activitystreams", "type": "Like",
                "id": f"{self.member.uri}/likes/{number}", "actor": self.member.uri, "object": object_uri,
                "audience": self.community.uri}
        if content is not None:
            like["content"] = content
            like["_misskey_reaction"] = content
        self.documents[f"/u/lemmy_user/likes/{number}"] = like
        return like

    def undo(self, number: int, inner: dict[str, Any]) -> dict[str, Any]:
        return {"@context": "https://www.w3.org/ns/activitystreams", "type": "Undo",
                "id": f"{self.member.uri}/undos/{number}", "actor": inner["actor"], "object": inner,
                "audience": self.community.uri}

    def relay(self, number: int, inner: dict[str, Any]) -> None:
        """The community announces a member's activity, wrapped unchanged, to its followers (FEP-1b12;
        Lemmy sends votes this way: only to the community, which announces them)."""
        for inbox in self.followers:
            announce = {"@context": "https://www.w3.org/ns/activitystreams", "type": "Announce",
                        "id": f"{self.base}/activities/announce/relay/{number}", "actor": self.community.uri,
                        "to": [PUBLIC], "cc": [f"{self.community.uri}/followers"], "object": inner}
            response = self.post(self.community, inbox, announce)
            assert response.status_code in (200, 202), response.text

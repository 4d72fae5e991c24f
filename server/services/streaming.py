"""Streaming: which bus topics a Mastodon stream reads, and how one bus event becomes the messages a
connection sends. Transport-neutral: server/http/mastodon/streaming.py frames WebSocket and SSE.

Cost model (many listeners of one author): a status event is rendered once, without a viewer, plus one
query for who has favourited, boosted, bookmarked or pinned it. Each connection then applies what it
keeps cached — the accounts hidden from it (blocks either way, mutes) and its filters — and picks its
flags; payloads with the same flags and no filter results are encoded once and shared. So a new post
costs a fixed number of queries however many connections receive it. The same visibility rules as the
timelines apply: the topics carry only what the timeline would hold (the fan-out decides home, list
and hashtag delivery), and the hidden set and `hide` filters are applied per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import msgspec

from server.bus.memory import RELATIONS_CHANGED, StreamEvent
from server.domain import filters as filtering
from server.ids import now_iso, parse_id, parse_iso
from server.ports import Subscription
from server.render import mastodon as render
from server.services import filters as filter_loader
from server.services import loaders
from server.services import scopes as scope_rules
from server.state import State
from server.storage import lists as list_store
from server.storage import notifications as notification_store
from server.storage import relations
from server.storage import statuses as status_store
from server.storage import streaming as store

log = logging.getLogger("crosstalk.streaming")
_encoder = msgspec.json.Encoder()

PUBLIC_STREAMS = {  # name → (topic, only media)
    "public": ("public", False), "public:media": ("public", True),
    "public:local": ("public:local", False), "public:local:media": ("public:local", True),
    "public:remote": ("public:remote", False), "public:remote:media": ("public:remote", True),
}
STREAMS = frozenset({"user", "user:notification", *PUBLIC_STREAMS, "hashtag", "hashtag:local", "list", "direct"})
STATUS_EVENTS = frozenset({"update", "status.update"})
DELETES = "delete"  # deletions of listed posts; user, hashtag and list streams forward it
SKIP: Any = object()
ACCESS_CHANGED = "_access"  # internal, on `user:<id>`: the account's tokens or access changed


class StreamError(Exception):
    """A stream cannot be opened; `status` is the HTTP-like code Mastodon reports with it."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Channel(msgspec.Struct, frozen=True):
    name: str  # user, public:local, hashtag, list, ...
    stream: tuple[str, ...]  # what messages name as their stream: ("hashtag", "Cats"), ("list", "12")
    topics: tuple[str, ...]
    context: str | None  # filter context whose `hide` filters drop statuses
    only_media: bool = False

    def accepts(self, topic: str, name: str, notifications: bool) -> bool:
        if topic == DELETES:
            return name == "delete"
        if self.name == "user":
            return name != "notification" or notifications
        if self.name == "user:notification":
            return name == "notification"
        return True


Message = tuple[tuple[str, ...], str, str | None]  # (stream, event name, payload text or None)


def _param(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None or isinstance(value, dict | bool):
        return ""
    return str(value).strip()


async def resolve(state: State, viewer_id: int, scopes: frozenset[str], name: Any,
                  params: dict[str, Any]) -> Channel:
    """The channel for a stream name and its parameters (tag, list), or StreamError."""
    if isinstance(name, list):
        name = name[0] if name else None
    if not isinstance(name, str) or name not in STREAMS:
        raise StreamError("Unknown stream type")
    if name not in PUBLIC_STREAMS and not name.startswith("hashtag"):
        needed = "read:notifications" if name == "user:notification" else "read:statuses"
        if not scope_rules.grants(scopes, needed):
            raise StreamError("Access token does not have the required scopes", 401)
    if name in PUBLIC_STREAMS:
        topic, media = PUBLIC_STREAMS[name]
        return Channel(name=name, stream=(name,), topics=(topic,), context="public", only_media=media)
    if name == "user":
        return Channel(name=name, stream=(name,), topics=(f"user:{viewer_id}", DELETES), context="home")
    if name == "user:notification":
        return Channel(name=name, stream=(name,), topics=(f"user:{viewer_id}",), context="notifications")
    if name == "direct":
        return Channel(name=name, stream=(name,), topics=(f"direct:{viewer_id}",), context=None)
    if name.startswith("hashtag"):
        raw = _param(params, "tag")
        tag = raw.lstrip("#").lower()
        if not tag:
            raise StreamError("Missing tag name parameter")
        if len(tag) > 255:
            raise StreamError("Unknown hashtag")
        topic = f"hashtag:local:{tag}" if name == "hashtag:local" else f"hashtag:{tag}"
        return Channel(name=name, stream=(name, raw), topics=(topic, DELETES), context="public")
    raw = _param(params, "list")
    if not raw:
        raise StreamError("Missing list name parameter")
    list_id = parse_id(raw)
    item = await list_store.get(state.db, list_id) if list_id is not None else None
    if item is None or item.account_id != viewer_id:
        raise StreamError("List not found", 404)
    return Channel(name=name, stream=(name, raw), topics=(f"list:{item.id}", DELETES), context="home")


def access_changed(state: State, account_id: int) -> None:
    """This process's streams of the account check their token again (see Connection._check_access)."""
    state.bus.deliver(StreamEvent(topic=f"user:{account_id}", name=ACCESS_CHANGED, account_id=account_id))


def relations_changed(state: State, *account_ids: int) -> None:
    """Blocks or mutes of these accounts changed: their streams re-read what they hide."""
    for account_id in account_ids:
        state.bus.publish(StreamEvent(topic=f"user:{account_id}", name=RELATIONS_CHANGED, account_id=account_id))


class RenderedStatus:
    """One status event rendered for nobody in particular, ready to be finished per viewer."""

    __slots__ = ("data", "outer", "inner", "account_ids", "domains", "has_media", "text", "_who", "_shared")

    def __init__(self, data: dict[str, Any], interactions: dict[str, set[tuple[int, int]]]) -> None:
        self.data = data
        inner = data.get("reblog")
        self.outer = (int(data["id"]), int(data["account"]["id"]))
        self.inner = (int(inner["id"]), int(inner["account"]["id"])) if inner else None
        self.account_ids = frozenset(a for _, a in filter(None, (self.outer, self.inner)))
        self.domains = frozenset(s["account"]["acct"].partition("@")[2] for s in (data, inner) if s) - {""}
        proper = inner or data
        self.has_media = bool(proper.get("media_attachments"))
        self.text = filtering.searchable_text(data)
        self._who = interactions
        self._shared: dict[tuple[Any, ...], str] = {}

    def _flags(self, viewer_id: int, status: tuple[int, int]) -> tuple[bool, bool, bool, bool | None]:
        sid, author = status
        key = (viewer_id, sid)
        return (key in self._who["f"], key in self._who["r"], key in self._who["b"],
                key in self._who["p"] if author == viewer_id else None)

    @staticmethod
    def _apply(data: dict[str, Any], flags: tuple[bool, bool, bool, bool | None]) -> None:
        data["favourited"], data["reblogged"], data["bookmarked"] = flags[0], flags[1], flags[2]
        data["muted"] = False
        if flags[3] is not None:
            data["pinned"] = flags[3]

    def payload(self, viewer_id: int, results: list[dict[str, Any]], inner_results: list[dict[str, Any]]) -> str:
        outer = self._flags(viewer_id, self.outer)
        inner = self._flags(viewer_id, self.inner) if self.inner else None
        key = (outer, inner)
        shareable = not results and not inner_results
        if shareable and key in self._shared:
            return self._shared[key]
        data = dict(self.data)
        self._apply(data, outer)
        if inner is not None:
            data["reblog"] = dict(self.data["reblog"])
            self._apply(data["reblog"], inner)
            data["reblog"]["filtered"] = inner_results
        data["filtered"] = results
        text = _encoder.encode(data).decode()
        if shareable:
            self._shared[key] = text
        return text


class StreamHub:
    """The streaming side of one instance: open connections and the shared per-event renderings."""

    def __init__(self, state: State, cache_size: int = 512) -> None:
        self.state = state
        self.connections: set[Connection] = set()
        self._renders: OrderedDict[tuple[str, int], tuple[float, asyncio.Future[RenderedStatus | None]]] = OrderedDict()
        self._cache_size = cache_size
        self._frames: OrderedDict[tuple[tuple[str, ...], str, str | None], str] = OrderedDict()

    def frame(self, stream: tuple[str, ...], name: str, payload: str | None) -> str:
        """The WebSocket message for an event. Connections given the same payload (the same string
        object, so the key hashes and compares cheaply) share one encoding of it."""
        key = (stream, name, payload)
        text = self._frames.get(key)
        if text is None:
            frame: dict[str, Any] = {"stream": list(stream), "event": name}
            if payload is not None:
                frame["payload"] = payload
            text = _encoder.encode(frame).decode()
            self._frames[key] = text
            if len(self._frames) > 256:
                self._frames.popitem(last=False)
        return text

    def connect(self, viewer_id: int, scopes: frozenset[str], bearer: str) -> Connection:
        conn = Connection(self, viewer_id, scopes, bearer)
        self.connections.add(conn)
        return conn

    async def status(self, event: StreamEvent) -> RenderedStatus | None:
        """The shared rendering for a status event: reused while it started after the event happened."""
        assert event.status_id is not None
        key = (event.name, event.status_id)
        entry = self._renders.get(key)
        if entry is None or entry[0] < event.at:
            entry = (time.monotonic(), asyncio.ensure_future(self._render(event.status_id)))
            self._renders[key] = entry
            while len(self._renders) > self._cache_size:
                self._renders.popitem(last=False)
        else:
            self._renders.move_to_end(key)
        future = entry[1]
        if future.done():
            return future.result()
        # shield: one listener going away must not cancel the rendering the others wait for
        return await asyncio.shield(future)

    async def _render(self, status_id: int) -> RenderedStatus | None:
        try:
            status = await status_store.get(self.state.db, status_id)
            if status is None or status.deleted_at is not None:
                return None
            rendered = render.statuses_json(self.state, await loaders.status_page(self.state, None, [status]))
            if not rendered or (status.reblog_of_id is not None and not rendered[0].get("reblog")):
                return None
            ids = [status.id] + ([status.reblog_of_id] if status.reblog_of_id else [])
            return RenderedStatus(rendered[0], await store.interactions(self.state.db, ids))
        except Exception:
            log.exception("could not render status %s for streaming", status_id)
            return None

    async def close_all(self) -> None:
        for conn in list(self.connections):
            await conn.shut()


class Flag:
    """Set once, read often: what the transports ask of `Connection.closing` (asyncio.Event's
    is_set/set without its waiter deque, which 10,000 idle streams would each carry)."""

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


class Connection:
    """One client connection: its channels, its bus subscription and its cached viewer state."""

    __slots__ = ("hub", "state", "viewer_id", "_bearer", "revoked", "notifications", "own_topic", "sub", "channels",
                 "_by_topic", "_hidden", "_hidden_until", "_hidden_domains", "_filters", "closing", "_closers",
                 "__weakref__")

    def __init__(self, hub: StreamHub, viewer_id: int, scopes: frozenset[str], bearer: str) -> None:
        self.hub = hub
        self.state = hub.state
        self.viewer_id = viewer_id
        self._bearer = bearer  # to check again when the account's access changes
        self.revoked = False
        self.notifications = scope_rules.grants(scopes, "read:notifications")
        self.own_topic = f"user:{viewer_id}"
        # Always on the viewer's own topic: filter and relation changes reach every stream it has open.
        self.sub: Subscription = self.state.bus.subscribe([self.own_topic])
        self.channels: dict[tuple[str, ...], Channel] = {}
        self._by_topic: dict[str, list[Channel]] = {}
        self._hidden: set[int] | frozenset[int] | None = None
        self._hidden_until: float | None = None  # time.time() when a timed mute in the set ends
        self._hidden_domains: set[str] | frozenset[str] = frozenset()  # the empty one is shared
        self._filters: list[filtering.ActiveFilter] | None = None
        self.closing = Flag()
        self._closers: list[Any] = []

    def on_shutdown(self, closer: Any) -> None:
        """Register an async callable the transport uses to end the connection at shutdown."""
        self._closers.append(closer)

    async def shut(self) -> None:
        self.closing.set()
        with contextlib.suppress(asyncio.QueueFull):  # wake a transport waiting for the next event
            self.sub.queue.put_nowait(StreamEvent(topic=self.own_topic, name="_closing"))
        for closer in self._closers:
            try:
                await closer()
            except Exception:  # a connection already gone is fine
                pass

    async def prepare(self) -> None:
        """Load the viewer state the hot path reads (before the first event, not during it)."""
        await self._hidden_set()
        await self._active_filters()

    def subscribe(self, channel: Channel) -> None:
        if channel.stream in self.channels:
            return
        self.channels[channel.stream] = channel
        for topic in channel.topics:
            self._by_topic.setdefault(topic, []).append(channel)
            self.sub.add(topic)

    def unsubscribe(self, stream: Iterable[str]) -> bool:
        channel = self.channels.pop(tuple(stream), None)
        if channel is None:
            return False
        for topic in channel.topics:
            left = [c for c in self._by_topic.get(topic, []) if c is not channel]
            if left:
                self._by_topic[topic] = left
            else:
                self._by_topic.pop(topic, None)
                if topic != self.own_topic:
                    self.sub.remove(topic)
        return True

    def close(self) -> None:
        self.sub.close()
        self.hub.connections.discard(self)

    async def _check_access(self) -> None:
        """The account's tokens, password, suspension or role changed: end the stream if its token no
        longer works, and narrow it to what the token still allows."""
        from server.services import oauth  # oauth → accounts → … → streaming: import when needed
        creds = await oauth.credentials_for(self.state, self._bearer)
        if creds is None or creds.account_id != self.viewer_id:
            self.revoked = True
            self.closing.set()
            return
        self.notifications = scope_rules.grants(creds.scopes, "read:notifications")

    async def next_event(self) -> StreamEvent:
        return await self.sub.queue.get()

    async def _hidden_set(self) -> set[int] | frozenset[int]:
        if self._hidden is None or (self._hidden_until is not None and self._hidden_until <= time.time()):
            # Empty sets (most viewers') are replaced by the shared empty frozenset: idle streams are many.
            self._hidden = await relations.hidden_account_ids(self.state.db, self.viewer_id) or frozenset()
            self._hidden_domains = await store.blocked_domains(self.state.db, self.viewer_id) or frozenset()
            until = await store.next_mute_expiry(self.state.db, self.viewer_id, now_iso())
            self._hidden_until = parse_iso(until).timestamp() if until else None
        return self._hidden

    async def _active_filters(self) -> list[filtering.ActiveFilter]:
        if self._filters is None:
            self._filters = await filter_loader.active_filters(self.state.db, self.viewer_id)
        return self._filters

    async def messages(self, event: StreamEvent) -> list[Message]:
        """What this connection sends for one bus event (often nothing)."""
        if event.topic == self.own_topic:
            if event.name == RELATIONS_CHANGED:
                self._hidden = None
            elif event.name == "filters_changed":
                self._filters = None
            elif event.name == ACCESS_CHANGED:
                await self._check_access()
        if event.name.startswith("_"):
            return []
        channels = self._by_topic.get(event.topic)
        if not channels:
            return []
        out: list[Message] = []
        for channel in channels:
            if not channel.accepts(event.topic, event.name, self.notifications):
                continue
            payload = await self._payload(event, channel)
            if payload is not SKIP:
                out.append((channel.stream, event.name, payload))
        return out

    async def _payload(self, event: StreamEvent, channel: Channel) -> Any:
        if event.name in STATUS_EVENTS and event.status_id is not None and not isinstance(event.payload, str):
            return await self._status_payload(event, channel)
        if event.name == "notification" and isinstance(event.payload, int):
            return await self._notification_payload(event.payload)
        if event.payload is None or isinstance(event.payload, str):
            return event.payload
        return _encoder.encode(event.payload).decode()

    async def _status_payload(self, event: StreamEvent, channel: Channel) -> Any:
        rendered = await self.hub.status(event)
        if rendered is None:
            return SKIP
        if rendered.account_ids & await self._hidden_set() or rendered.domains & self._hidden_domains:
            return SKIP
        if channel.only_media and not rendered.has_media:
            return SKIP
        filters = await self._active_filters()
        results: list[dict[str, Any]] = []
        inner_results: list[dict[str, Any]] = []
        if filters:
            now = now_iso()
            ids = {rendered.outer[0]} | ({rendered.inner[0]} if rendered.inner else set())
            results = filtering.match(filters, rendered.text, ids, now)
            if rendered.inner:
                inner_results = filtering.match(filters, rendered.text, {rendered.inner[0]}, now)
            if channel.context and filtering.hides(results, channel.context):
                return SKIP
        return rendered.payload(self.viewer_id, results, inner_results)

    async def _notification_payload(self, notification_id: int) -> Any:
        note = await notification_store.get(self.state.db, self.viewer_id, notification_id)
        if note is None:
            return SKIP
        # the loader leaves out a notification about a status the viewer's `hide` filters remove
        rendered = render.notifications_json(self.state, await loaders.notification_page(self.state, self.viewer_id, [note]))
        if not rendered:
            return SKIP
        return _encoder.encode(rendered[0]).decode()

"""Remote actors and posts: discovery, signed fetches, keys, and turning their documents into records.

`Federation` is the one object that holds the outgoing HTTP client and the instance actor's key; the
inbox, the delivery worker and the API resolver all go through it.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from typing import Any

import msgspec

from federation import html as ap_html
from federation import models as ap
from federation.addressing import visibility_from_addressing
from federation.client import FederationClient, FetchError
from federation.signatures import generate_rsa_keypair
from server.config import ConfigError
from server.ids import iso, new_id, now_iso, parse_iso
from server.records import Account, Status
from server.services import statuses as status_service
from server.services.boundary import Refused
from server.state import State
from server.storage import accounts as account_store
from server.storage import federation as fed_store
from server.storage import polls as poll_store
from server.storage import statuses as status_store
from server.version import VERSION

log = logging.getLogger("crosstalk.federation")
ACTOR_REFRESH_SECONDS = 24 * 3600
MAX_ANCESTORS = 20
MAX_POLL_OPTIONS = 20
KEY_CACHE_SECONDS = 60.0
ID_ATTEMPTS = 5
BACKFILL_COOLDOWN = 15 * 60.0
BACKFILL_PAGES = 5
BACKFILL_ITEMS = 200


class RemoteError(Exception):
    """A remote object could not be obtained or is unusable."""


class Federation:
    def __init__(self, state: State) -> None:
        self.state = state
        cfg = state.config
        dev = bool(cfg["development"])
        self.client = FederationClient(
            user_agent=f"Crosstalk/{VERSION} (+{state.base_url}/)",
            allowed_private_networks=cfg["federation.allowed_private_addresses"],
            allow_http=dev, default_scheme=cfg["scheme"] if dev else "https",
            on_signature_format=self._remember_format)
        self.instance_actor_id = 0
        self.instance_key_id = f"{state.base_url}/actor#main-key"
        self._instance_private_pem = ""
        self._key_locks: dict[int, asyncio.Lock] = {}
        self._actor_locks: dict[str, asyncio.Lock] = {}
        self._backfilled: dict[int, float] = {}
        self._signing_keys: dict[int, tuple[str, str]] = {}
        self._key_owners: dict[str, tuple[Account, float]] = {}  # thread root id → monotonic time before which we skip

    async def start(self) -> None:
        db = self.state.db
        row = await fed_store.instance_actor_row(db, self.state.base_url)
        previous = await fed_store.instance_actor_uri(db)
        if row is None and previous is not None:
            raise ConfigError(f"setting domain (CROSSTALK_DOMAIN): this data directory belongs to "
                              f"{previous.removesuffix('/actor')}; an instance's domain cannot change once it federates")
        if row is None:
            private_pem, public_pem = await asyncio.get_running_loop().run_in_executor(None, generate_rsa_keypair)
            async with db.transaction() as tx:
                self.instance_actor_id = await fed_store.ensure_instance_actor(tx, self.state.base_url, private_pem,
                                                                               public_pem)
            self._instance_private_pem = private_pem
        else:
            self.instance_actor_id, self._instance_private_pem = row[0], row[1]
        self.client.preload_signature_formats(await fed_store.signature_formats(db))

    async def close(self) -> None:
        await self.client.close()

    def _remember_format(self, host: str, fmt: str) -> None:
        async def save() -> None:
            async with self.state.db.transaction() as tx:
                await fed_store.save_host(tx, host, signature_format=fmt)
        self.state.spawn(save(), name=f"remember signature format {host}")

    # -- keys ----------------------------------------------------------------------------------------

    async def signing_key(self, account: Account) -> tuple[str, str]:
        """(key id, private PEM) of a local account, generating the key pair on first use."""
        if account.id == self.instance_actor_id:
            return self.instance_key_id, self._instance_private_pem
        cached = self._signing_keys.get(account.id)
        if cached is not None:  # keys never change once made, and every delivery needs one
            return cached
        pem = await account_store.private_key(self.state.db, account.id)
        if pem:
            self._signing_keys[account.id] = (account.key_id or f"{account.uri}#main-key", pem)
            return self._signing_keys[account.id]
        lock = self._key_locks.setdefault(account.id, asyncio.Lock())
        async with lock:
            pem = await account_store.private_key(self.state.db, account.id)
            if not pem:
                pem, public = await asyncio.get_running_loop().run_in_executor(None, generate_rsa_keypair)
                async with self.state.db.transaction() as tx:
                    await account_store.set_keys(tx, account.id, pem, public)
                pem = await account_store.private_key(self.state.db, account.id)
        return account.key_id or f"{account.uri}#main-key", pem

    async def public_key_pem(self, account: Account) -> str:
        if not account.public_key_pem:
            await self.signing_key(account)
            fresh = await account_store.get(self.state.db, account.id)
            return fresh.public_key_pem if fresh else ""
        return account.public_key_pem

    async def key_owner(self, key_id: str, refresh: bool = False) -> Account:
        """The remote account owning `key_id`, fetched (or refetched, after a failed check) as needed."""
        now = time.monotonic()
        if not refresh:
            cached = self._key_owners.get(key_id)
            if cached is not None and cached[1] > now:  # every inbox POST asks: keep them in memory a while
                return cached[0]
            known = await fed_store.account_by_key_id(self.state.db, key_id)
            if known is not None:
                self._key_owners[key_id] = (known, now + KEY_CACHE_SECONDS)
                return known
        self._key_owners.pop(key_id, None)
        doc = await self.fetch(key_id)
        key = ap.parse_public_key(doc, key_id)
        actor_doc = doc if key.owner_confirmed else await self.fetch(key.owner)
        account = await self.store_actor(actor_doc)
        if account.key_id != key.id or account.public_key_pem.strip() != key.pem.strip():
            raise RemoteError("the key's owner does not list this key")
        self._key_owners[key_id] = (account, time.monotonic() + KEY_CACHE_SECONDS)
        return account

    # -- fetching --------------------------------------------------------------------------------------

    async def fetch(self, url: str) -> dict[str, Any]:
        """Signed GET as the instance actor, only toward domains the boundary allows."""
        try:
            await self.state.boundary.check_fetch(url)
        except Refused as exc:
            raise RemoteError(exc.reason) from exc
        try:
            return await self.client.fetch(url, key_id=self.instance_key_id, private_key_pem=self._instance_private_pem)
        except FetchError as exc:
            self.state.boundary.record("out", "fetch", ap.host_of(url), "failed", reason=str(exc)[:300])
            raise RemoteError(str(exc)) from exc

    async def actor(self, uri: str, refresh: bool = False) -> Account:
        """A remote actor by URI: from the database when fresh, else fetched and stored."""
        if ap.host_of(uri) == self.state.domain:
            local = await account_store.by_uri(self.state.db, uri)
            if local is None:
                raise RemoteError(f"no local actor {uri}")
            return local
        known = await account_store.by_uri(self.state.db, uri)
        if known is not None and not refresh and known.fetched_at and not _stale(known.fetched_at):
            return known
        lock = self._actor_locks.setdefault(uri, asyncio.Lock())
        async with lock:
            known = await account_store.by_uri(self.state.db, uri)
            if known is not None and not refresh and known.fetched_at and not _stale(known.fetched_at):
                return known
            try:
                return await self.store_actor(await self.fetch(uri))
            except RemoteError:
                if known is not None:
                    return known
                raise
            finally:
                self._actor_locks.pop(uri, None)

    async def store_actor(self, doc: dict[str, Any]) -> Account:
        try:
            parsed = ap.parse_actor(doc)
        except ap.InvalidObject as exc:
            raise RemoteError(f"unusable actor: {exc.reason if hasattr(exc, 'reason') else exc}") from exc
        domain = ap.host_of(parsed.id)
        if domain == self.state.domain:
            raise RemoteError("refusing to store a remote copy of a local actor")
        if parsed.inbox and not ap.same_host(parsed.inbox, parsed.id):
            raise RemoteError("actor inbox is on another host")
        key = next((k for k in parsed.public_keys), None)
        fields = [[ap_html.sanitize_html(n), ap_html.sanitize_html(v), ap_html.html_to_text(v)] for n, v in parsed.fields][:20]
        values = {
            "username": parsed.preferred_username[:100], "domain": domain,
            "display_name": (parsed.name or "")[:200], "note": ap_html.sanitize_html(parsed.summary or ""),
            "fields": msgspec.json.encode(fields).decode(), "locked": int(parsed.manually_approves_followers),
            "bot": int(parsed.type in ("Application", "Service")), "discoverable": int(parsed.discoverable),
            "avatar_url": parsed.icon_url or "", "header_url": parsed.image_url or "", "uri": parsed.id,
            "url": parsed.url or parsed.id, "inbox_url": parsed.inbox, "shared_inbox_url": parsed.shared_inbox or "",
            "outbox_url": parsed.outbox or "", "followers_url": parsed.followers or "",
            "following_url": parsed.following or "", "featured_url": parsed.featured or "",
            "public_key_pem": key.pem if key else "", "key_id": key.id if key else "",
            "actor_type": parsed.type, "moved_to_uri": parsed.moved_to,
        }
        async with self.state.db.transaction() as tx:
            account_id = await fed_store.upsert_remote_account(tx, values)
        account = await account_store.get(self.state.db, account_id)
        assert account is not None
        return account

    async def resolve_account(self, acct: str) -> Account | None:
        """`user@domain` → account, through WebFinger for accounts we have not seen."""
        username, _, domain = acct.strip().lstrip("@").partition("@")
        if not domain or domain.lower() == self.state.domain:
            return await account_store.by_username(self.state.db, username)
        known = await account_store.by_username(self.state.db, username, domain.lower())
        if known is not None:
            return known
        try:
            await self.state.boundary.check_fetch(f"https://{domain.lower()}/")
            actor_url = await self.client.resolve_acct(f"{username}@{domain}")
            return await self.actor(actor_url)
        except Refused as exc:
            log.info("not resolving %s: %s", acct, exc.reason)
            return None
        except (FetchError, RemoteError) as exc:
            log.info("could not resolve %s: %s", acct, exc)
            self.state.boundary.record("out", "fetch", domain.lower(), "failed", actor=acct[:300], reason=str(exc)[:300])
            return None

    async def resolve_url(self, url: str) -> Account | Status | None:
        """A URL pasted into search: a known status or account, or fetched."""
        found = await status_store.by_uri(self.state.db, url)
        if found is not None:
            return found
        account = await account_store.by_uri(self.state.db, url)
        if account is not None:
            return account
        by_url = await fed_store.status_id_by_url(self.state.db, url)
        if by_url is not None:
            return await status_store.get(self.state.db, by_url)
        try:
            doc = await self.fetch(url)
        except RemoteError:
            return None
        kind = ap.first_str(doc.get("type"))
        if kind in ap.ACTOR_TYPES:
            return await self.store_actor(doc)
        try:
            return await self.note(doc)
        except RemoteError:
            return None

    # -- posts ---------------------------------------------------------------------------------------

    async def status_by_uri(self, uri: str, depth: int = 0) -> Status | None:
        """A status we have, or fetch it (and its ancestors) from its origin."""
        found = await status_store.by_uri(self.state.db, uri)
        if found is not None or depth > MAX_ANCESTORS:
            return found
        if ap.host_of(uri) == self.state.domain or await fed_store.is_tombstoned(self.state.db, uri):
            return None
        try:
            return await self.note(await self.fetch(uri), depth=depth + 1)
        except RemoteError as exc:
            log.info("could not fetch %s: %s", uri, exc)
            return None

    async def note(self, doc: dict[str, Any], depth: int = 0, actor: Account | None = None) -> Status:
        """Store a remote Note (if new) and return its status. Checks that its author is on its host."""
        try:
            parsed = ap.parse_note(doc)
        except ap.InvalidObject as exc:
            raise RemoteError(f"unusable note: {exc}") from exc
        if not ap.same_host(parsed.id, parsed.attributed_to):
            raise RemoteError("note and author are on different hosts")
        if ap.host_of(parsed.id) == self.state.domain:
            raise RemoteError("refusing a remote copy of a local note")
        existing = await status_store.by_uri(self.state.db, parsed.id)
        if existing is not None:
            return existing
        if await fed_store.is_tombstoned(self.state.db, parsed.id):
            raise RemoteError("note was deleted")
        author = actor if actor is not None and actor.uri == parsed.attributed_to else await self.actor(parsed.attributed_to)
        parent = None
        if parsed.in_reply_to:
            parent = await self.status_by_uri(parsed.in_reply_to, depth)
            if parent is not None and parent.local_only:
                raise RemoteError("replies to local-only posts are not accepted")
        return await self._store_note(parsed, author, parent)

    async def _store_note(self, parsed: ap.ParsedNote, author: Account, parent: Status | None) -> Status:
        visibility = visibility_from_addressing(parsed.to, parsed.cc, author.followers_url or None)
        try:
            most_public, strip_media, no_direct = await self.state.boundary.inbound_note_rules(author.domain)
        except Refused as exc:
            raise RemoteError(exc.reason) from exc
        if no_direct and visibility == "direct":
            self.state.boundary.record("in", "receive", author.domain, "rejected", actor=author.uri,
                                       activity_type="Note", reason="partner policy: no direct messages")
            raise RemoteError("direct messages from this partner are not accepted")
        visibility = self.state.boundary.clamp(visibility, most_public)
        content = ap_html.sanitize_html(parsed.content or "")
        if parsed.name and not content:
            content = f"<p>{ap_html.sanitize_html(parsed.name)}</p>"
        mentioned, tags = await self.tags_of(parsed)
        published = parsed.published.timestamp() if parsed.published else time.time()
        status_id = new_id(int(published * 1000)) if published < time.time() - 5 else new_id()
        created = iso(parsed.published) if parsed.published else now_iso()
        status = Status(
            id=status_id, uri=parsed.id, url=parsed.url or parsed.id, account_id=author.id, local=False,
            in_reply_to_id=parent.id if parent else None, in_reply_to_account_id=parent.account_id if parent else None,
            reblog_of_id=None, thread_id=(parent.thread_id or parent.id) if parent else status_id, content=content,
            source_text=ap_html.html_to_text(content), spoiler_text=(parsed.summary or "")[:1000],
            visibility=visibility, sensitive=bool(parsed.sensitive or parsed.summary), language=parsed.language,
            app_id=None, created_at=created, edited_at=iso(parsed.updated) if parsed.updated else None,
            deleted_at=None, replies_count=0, reblogs_count=0, favourites_count=0)
        attachments = [] if strip_media else parsed.attachments[:8]

        poll_options = parsed.poll_options[:MAX_POLL_OPTIONS] if parsed.poll_options else None

        async def media(tx: Any) -> None:
            for position, a in enumerate(attachments):
                await fed_store.insert_remote_media(tx, author.id, status.id, position, a)
            if poll_options and len(poll_options) >= 2:  # a Question: keep its options and its own counts
                end = parsed.poll_closed or parsed.poll_end_time
                await poll_store.insert(tx, status_id=status.id, account_id=author.id,
                                        options=[o.name[:200] for o in poll_options], multiple=parsed.poll_multiple,
                                        hide_totals=False, expires_at=iso(end) if end else None,
                                        tallies=[max(0, o.votes) for o in poll_options],
                                        voters_count=parsed.poll_voters_count or 0)

        for attempt in range(ID_ATTEMPTS):
            try:
                await status_service.store_status(self.state, status, mentioned, tags, media)
                return status
            except Exception as exc:
                existing = await status_store.by_uri(self.state.db, parsed.id)
                if existing is not None:  # a concurrent delivery of the same note won the race
                    return existing
                if not isinstance(exc, sqlite3.IntegrityError) or attempt == ID_ATTEMPTS - 1:
                    raise RemoteError(f"could not store note: {exc}") from exc
                # Another post published in the same millisecond drew this time-based id: draw again.
                fresh_id = new_id(int(published * 1000)) if published < time.time() - 5 else new_id()
                status = msgspec.structs.replace(
                    status, id=fresh_id, thread_id=fresh_id if status.thread_id == status.id else status.thread_id)
        raise RemoteError("could not store note")

    async def backfill_thread(self, status: Status, budget: float = 4.0) -> None:
        """Opening a thread: fetch the conversation from the root's origin (FEP-7888 `context`, else the
        `replies` collection) so replies we were never sent show up. At most once per 15 minutes a thread."""
        root = status
        if status.thread_id and status.thread_id != status.id:
            root = await status_store.get(self.state.db, status.thread_id) or status
        if root.local:
            return
        now = time.monotonic()
        if self._backfilled.get(root.id, 0) > now:
            return
        self._backfilled[root.id] = now + BACKFILL_COOLDOWN
        try:
            await asyncio.wait_for(self._backfill(root), budget)
        except (TimeoutError, RemoteError) as exc:
            log.info("thread backfill of %s stopped: %s", root.uri, exc)

    async def _backfill(self, root: Status) -> None:
        doc = await self.fetch(root.uri)
        collection = ap.id_of(doc.get("context")) or ap.id_of(doc.get("replies"))
        if isinstance(doc.get("replies"), dict) and not ap.id_of(doc.get("context")):
            collection_doc: dict[str, Any] | None = doc["replies"]
        else:
            collection_doc = await self.fetch(collection) if collection and ap.same_host(collection, root.uri) else None
        seen = 0
        pages = 0
        while collection_doc is not None and pages < BACKFILL_PAGES and seen < BACKFILL_ITEMS:
            pages += 1
            page = collection_doc.get("first", collection_doc) if "orderedItems" not in collection_doc and "items" not in collection_doc else collection_doc
            if isinstance(page, str):
                page = await self.fetch(page)
            if not isinstance(page, dict):
                return
            for item in ap.as_list(page.get("orderedItems") or page.get("items"))[:BACKFILL_ITEMS]:
                uri = ap.id_of(item)
                if not uri or uri == root.uri:
                    continue
                seen += 1
                if isinstance(item, dict) and ap.first_str(item.get("type")) in ap.POST_TYPES:
                    try:
                        await self.note(item)
                        continue
                    except RemoteError:
                        pass
                await self.status_by_uri(uri)
            next_page = ap.id_of(page.get("next"))
            collection_doc = await self.fetch(next_page) if next_page and ap.same_host(next_page, root.uri) else None

    async def tags_of(self, parsed: ap.ParsedNote) -> tuple[list[int], list[str]]:
        mentioned: list[int] = []
        tags: list[str] = []
        for tag in parsed.tags:
            if tag.type == "Mention" and tag.href:
                account = await account_store.by_uri(self.state.db, tag.href)
                if account is None and ap.host_of(tag.href) == self.state.domain:
                    local_id = await fed_store.local_account_id_by_url(self.state.db, tag.href)
                    account = await account_store.get(self.state.db, local_id) if local_id else None
                if account is not None and account.id not in mentioned:
                    mentioned.append(account.id)
            elif tag.type == "Hashtag" and tag.name:
                name = tag.name.lstrip("#")
                if name and len(name) <= 100 and name not in tags:
                    tags.append(name)
        return mentioned[:100], tags[:50]


def _stale(fetched_at: str) -> bool:
    return time.time() - parse_iso(fetched_at).timestamp() > ACTOR_REFRESH_SECONDS


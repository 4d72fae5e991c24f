"""Keys: the instance actor (created on first start, it signs our fetches), the signing keys of local
accounts (made on first use), and the owners of remote keys that sign requests to us."""

from __future__ import annotations

import asyncio
import time

from federation import models as ap
from federation.signatures import generate_rsa_keypair
from server.domain.records import Account
from server.services.federation import actors
from server.services.federation.client import RemoteError
from server.settings import ConfigError
from server.state import State
from server.storage import accounts as account_store
from server.storage import deliveries as delivery_store
from server.storage import remote_actors

KEY_CACHE_SECONDS = 60.0


async def load_instance_actor(state: State) -> None:
    """Load (or, on a fresh data directory, create) the instance actor and its key, and the signature
    formats hosts are known to accept. Refuses a domain change once the instance federates."""
    db, remote = state.db, state.remote
    row = await remote_actors.instance_actor_row(db, state.base_url)
    previous = await remote_actors.instance_actor_uri(db)
    if row is None and previous is not None:
        raise ConfigError(f"setting domain (CROSSTALK_DOMAIN): this data directory belongs to "
                          f"{previous.removesuffix('/actor')}; an instance's domain cannot change once it federates")
    if row is None:
        private_pem, public_pem = await asyncio.get_running_loop().run_in_executor(None, generate_rsa_keypair)
        async with db.transaction() as tx:
            remote.instance_actor_id = await remote_actors.ensure_instance_actor(tx, state.base_url, private_pem,
                                                                                 public_pem)
        remote.instance_private_pem = private_pem
    else:
        remote.instance_actor_id, remote.instance_private_pem = row[0], row[1]
    remote.client.preload_signature_formats(await delivery_store.signature_formats(db))


async def signing_key(state: State, account: Account) -> tuple[str, str]:
    """(key id, private PEM) of a local account, generating the key pair on first use."""
    remote = state.remote
    if account.id == remote.instance_actor_id:
        return remote.instance_key_id, remote.instance_private_pem
    cached = remote.signing_keys.get(account.id)
    if cached is not None:  # keys never change once made, and every delivery needs one
        return cached
    pem = await account_store.private_key(state.db, account.id)
    if pem:
        remote.signing_keys[account.id] = (account.key_id or f"{account.uri}#main-key", pem)
        return remote.signing_keys[account.id]
    lock = remote.key_locks.setdefault(account.id, asyncio.Lock())
    async with lock:
        pem = await account_store.private_key(state.db, account.id)
        if not pem:
            pem, public = await asyncio.get_running_loop().run_in_executor(None, generate_rsa_keypair)
            async with state.db.transaction() as tx:
                await account_store.set_keys(tx, account.id, pem, public)
            pem = await account_store.private_key(state.db, account.id)
    return account.key_id or f"{account.uri}#main-key", pem


async def public_key_pem(state: State, account: Account) -> str:
    """A local account's public key, made on first use."""
    if not account.public_key_pem:
        await signing_key(state, account)
        fresh = await account_store.get(state.db, account.id)
        return fresh.public_key_pem if fresh else ""
    return account.public_key_pem


async def key_owner(state: State, key_id: str, refresh: bool = False) -> Account:
    """The remote account owning `key_id`, fetched (or refetched, after a failed check) as needed."""
    remote = state.remote
    now = time.monotonic()
    if not refresh:
        cached = remote.key_owners.get(key_id)
        if cached is not None and cached[1] > now:  # every inbox POST asks: keep them in memory a while
            return cached[0]
        known = await remote_actors.account_by_key_id(state.db, key_id)
        if known is not None:
            remote.key_owners[key_id] = (known, now + KEY_CACHE_SECONDS)
            return known
    remote.key_owners.pop(key_id, None)
    doc = await remote.fetch(key_id)
    try:
        key = ap.parse_public_key(doc, key_id)
    except ap.InvalidObject as exc:
        raise RemoteError(f"unusable key document: {exc}") from exc
    if not ap.same_host(key.owner, key_id):
        raise RemoteError("the key's owner is on another host than the key")
    # The document at the key URL is the actor only when it *is* the document at that URL (Mastodon's
    # `actor#main-key`); GoToSocial serves a stub there (no inbox), and standalone key documents
    # exist: then the actor is fetched from the owner, and must list the same key.
    is_actor = key.owner_confirmed and ap.id_of(doc.get("id")) == key_id.split("#", 1)[0]
    actor_doc = doc if is_actor else await remote.fetch(key.owner)
    if ap.id_of(actor_doc.get("id")) != key.owner:
        raise RemoteError("the key's owner is not the actor its document names")
    account = await actors.store_actor(state, actor_doc, key_id=key.id)
    if account.key_id != key.id or account.public_key_pem.strip() != key.pem.strip():
        raise RemoteError("the key's owner does not list this key")
    remote.key_owners[key_id] = (account, time.monotonic() + KEY_CACHE_SECONDS)
    return account

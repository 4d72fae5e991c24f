"""An account's life: roles, suspension and reactivation, disabling, approval, deletion, and the lighter
moderation marks (silence, sensitive). The admin API, the admin CLI, SCIM and single sign-on all come
here, so each action has one set of rules and one audit entry.

Every change of access announces Invalidation.ACCESS in its transaction: every process drops the
account's cached tokens and its open streams check their token again (they close within a second).
"""

from __future__ import annotations

from server.domain.events import AccountDeleted, AccountSuspended, AccountUnsuspended
from server.domain.identity import Role
from server.domain.records import Account
from server.ids import now_iso
from server.ports import Tx
from server.services import audit
from server.services.errors import Forbidden, NotFound, Unprocessable
from server.settings import SuspendedPosts
from server.state import Invalidation, State
from server.storage import accounts as account_store
from server.storage import identity as store
from server.storage import oauth as oauth_store
from server.storage import remote_actors


async def account_or_404(state: State, account_id: int) -> Account:
    account = await account_store.get(state.db, account_id)
    if account is None or account.actor_type == "Application":
        raise NotFound()
    return account


async def _access_changed(state: State, tx: Tx, account_id: int, *, revoke: bool) -> None:
    if revoke:
        await oauth_store.revoke_all_for_account(tx, account_id)
    await state.invalidations.announce(tx, Invalidation.ACCESS, str(account_id))


async def check_may_act(state: State, actor: audit.Actor, target: Account) -> None:
    """Staff act on others; a moderator never acts on staff; nobody suspends or deletes themselves."""
    if actor.account_id is None:
        return  # the CLI, SCIM and the sign-in rules act for the organisation
    if actor.account_id == target.id:
        raise Forbidden("You cannot do this to your own account")
    actor_role = await store.role_of(state.db, actor.account_id) or Role.USER
    target_role = await store.role_of(state.db, target.id) or Role.USER
    if actor_role is not Role.ADMIN and target_role is not Role.USER:
        raise Forbidden("Only admins can act on staff accounts")


# -- roles ------------------------------------------------------------------------------------------------

async def set_role(state: State, account: Account, role: Role, actor: audit.Actor, *, source: str) -> bool:
    """Give a local user a role; True if it changed. `source` says why (admin, oidc, scim)."""
    current = await store.role_of(state.db, account.id)
    if current is None:
        raise Unprocessable("Only local users have roles")
    if current is role:
        return False
    async with state.db.transaction() as tx:
        await store.set_role(tx, account.id, role)
        await _access_changed(state, tx, account.id, revoke=False)
        await audit.record(tx, actor, "account.role", target_type="account", target_id=account.id,
                           target=account.acct, detail={"from": current.value, "to": role.value, "source": source})
    return True


# -- suspension ---------------------------------------------------------------------------------------------

async def suspend(state: State, account: Account, actor: audit.Actor, *, origin: str, reason: str = "") -> bool:
    """Suspend: tokens revoked, sessions ended, streams closed, sign-in refused, peers told. True if it
    was not suspended before."""
    if account.suspended or account.deleted_at is not None:
        return False
    async with state.db.transaction() as tx:
        await store.set_suspended(tx, account.id, True, origin)
        if account.local and state.settings.accounts.suspended_posts is SuspendedPosts.HIDE:
            await store.hide_posts(tx, account.id)
        await _access_changed(state, tx, account.id, revoke=True)
        if account.local:
            await state.events.record(tx, AccountSuspended(account_id=account.id))
        await audit.record(tx, actor, "account.suspend", target_type="account", target_id=account.id,
                           target=account.acct, detail={"origin": origin, "reason": reason or None})
    return True


async def unsuspend(state: State, account: Account, actor: audit.Actor, *, origin: str) -> bool:
    if not account.suspended or account.deleted_at is not None:
        return False
    async with state.db.transaction() as tx:
        await store.set_suspended(tx, account.id, False, None)
        await store.show_posts(tx, account.id)
        await _access_changed(state, tx, account.id, revoke=False)
        if account.local:
            await state.events.record(tx, AccountUnsuspended(account_id=account.id))
        await audit.record(tx, actor, "account.unsuspend", target_type="account", target_id=account.id,
                           target=account.acct, detail={"origin": origin})
    return True


# -- deletion ------------------------------------------------------------------------------------------------

async def delete(state: State, account: Account, actor: audit.Actor, *, origin: str) -> None:
    """Delete as Mastodon does: posts and follows go, the handle stays taken, and the servers of its
    followers receive a `Delete` of the actor."""
    if account.deleted_at is not None:
        return
    inboxes = [shared or inbox for inbox, shared in await remote_actors.remote_follower_inboxes(state.db, account.id)]
    async with state.db.transaction() as tx:
        await remote_actors.mark_account_deleted(tx, account.id)
        if account.local:
            await store.scrub_deleted_local(tx, account.id)
        await store.set_moderation(tx, account.id, suspended_at=now_iso(), suspension_origin=origin)
        await _access_changed(state, tx, account.id, revoke=True)
        if account.local:
            await state.events.record(tx, AccountDeleted(account_id=account.id, inboxes=sorted(set(inboxes))))
        await audit.record(tx, actor, "account.delete", target_type="account", target_id=account.id,
                           target=account.acct, detail={"origin": origin})


# -- the lighter actions --------------------------------------------------------------------------------------

async def set_disabled(state: State, account: Account, disabled: bool, actor: audit.Actor) -> None:
    """Disable a local user's sign-in (the account stays visible); or enable it again."""
    user = await account_store.user(state.db, account.id)
    if user is None:
        raise Unprocessable("Only local users can be disabled")
    if user.disabled == disabled:
        return
    async with state.db.transaction() as tx:
        await store.set_disabled(tx, account.id, disabled)
        await _access_changed(state, tx, account.id, revoke=disabled)
        await audit.record(tx, actor, "account.disable" if disabled else "account.enable", target_type="account",
                           target_id=account.id, target=account.acct)


async def set_mark(state: State, account: Account, mark: str, on: bool, actor: audit.Actor) -> None:
    """Silence or mark sensitive (mark = "silenced" or "sensitized"), or lift it."""
    async with state.db.transaction() as tx:
        await store.set_moderation(tx, account.id, **{f"{mark}_at": now_iso() if on else None})
        verb = {"silenced": ("silence", "unsilence"), "sensitized": ("sensitive", "unsensitive")}[mark]
        await audit.record(tx, actor, f"account.{verb[0] if on else verb[1]}", target_type="account",
                           target_id=account.id, target=account.acct)


async def approve(state: State, account: Account, actor: audit.Actor) -> None:
    user = await account_store.user(state.db, account.id)
    if user is None or user.approved:
        raise Forbidden("This account is not pending")
    async with state.db.transaction() as tx:
        await store.set_approved(tx, account.id)
        await audit.record(tx, actor, "account.approve", target_type="account", target_id=account.id,
                           target=account.acct)


async def reject(state: State, account: Account, actor: audit.Actor) -> None:
    user = await account_store.user(state.db, account.id)
    if user is None or user.approved:
        raise Forbidden("This account is not pending")
    async with state.db.transaction() as tx:
        await store.delete_pending_user(tx, account.id)
        await audit.record(tx, actor, "account.reject", target_type="account", target_id=account.id,
                           target=account.acct)


async def unlink_identities(state: State, account: Account, actor: audit.Actor) -> int:
    """Remove the account's provider links: its tokens stop working at once."""
    async with state.db.transaction() as tx:
        removed = await store.delete_identities(tx, account.id)
        if removed:
            await _access_changed(state, tx, account.id, revoke=True)
            for identity in removed:
                await audit.record(tx, actor, "sso.unlink", target_type="account", target_id=account.id,
                                   target=account.acct, detail={"issuer": identity.issuer,
                                                                "subject": identity.subject})
    return len(removed)

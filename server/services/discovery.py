"""Who to follow: suggestions (colleagues first) and familiar followers."""

from __future__ import annotations

from server.domain.records import Account
from server.services.errors import NotFound
from server.state import State
from server.storage import accounts, relations
from server.storage import discovery as store


async def suggestions(state: State, viewer: Account, limit: int) -> list[tuple[Account, bool]]:
    """(account, same department as the viewer?) — colleagues first, then the most followed."""
    department = await store.department_of(state.db, viewer.id)
    rows = await store.suggestions(state.db, viewer.id, department, limit)
    found = await accounts.get_many(state.db, [a for a, _ in rows])
    return [(found[a], colleague) for a, colleague in rows if a in found]


async def dismiss(state: State, viewer: Account, target_id: int) -> None:
    if await accounts.get(state.db, target_id) is None:
        raise NotFound()
    async with state.db.transaction() as tx:
        await store.dismiss(tx, viewer.id, target_id)


async def familiar_followers(state: State, viewer: Account, target_ids: list[int]) -> dict[int, list[Account]]:
    """For each target: the accounts following it that the viewer follows (hidden accounts left out)."""
    hidden = await relations.hidden_account_ids(state.db, viewer.id)
    familiar = await store.familiar_followers(state.db, viewer.id, target_ids, hidden)
    found = await accounts.get_many(state.db, {a for accs in familiar.values() for a in accs})
    return {target: [found[a] for a in accs if a in found] for target, accs in familiar.items()}

"""What the instance tells about itself: its figures, its peers and whom to contact."""

from __future__ import annotations

from dataclasses import dataclass

from server.domain.records import Account
from server.state import State
from server.storage import accounts as account_store


@dataclass(frozen=True, slots=True)
class Figures:
    users: int
    statuses: int
    domains: int
    contact: Account | None


async def contact_account(state: State) -> Account | None:
    """The first admin, shown as the instance's contact."""
    admin_id = await account_store.first_admin_id(state.db)
    return await account_store.get(state.db, admin_id) if admin_id is not None else None


async def figures(state: State) -> Figures:
    """For /api/v1/instance: local users and posts, known domains, and the contact account."""
    return Figures(users=await account_store.count_local_users(state.db),
                   statuses=await account_store.count_local_statuses(state.db),
                   domains=len(await account_store.known_domains(state.db)), contact=await contact_account(state))


async def active_month(state: State) -> int:
    return await account_store.active_users(state.db, 30)


async def peers(state: State) -> list[str]:
    return await account_store.known_domains(state.db)

"""Which database an instance uses: PostgreSQL when `database.url` is set, else the SQLite file in
the data directory. Everything else talks to the Store it returns and never asks which it is."""

from __future__ import annotations

from server.ports import Store
from server.settings import Settings


def database_for(settings: Settings, *, readers: int = 2) -> Store:
    """The configured database, not yet opened. `readers`: SQLite reader connections (a pool's
    size on PostgreSQL is `database.pool_size`)."""
    if settings.database.url:
        from server.storage.postgres import PostgresDatabase  # asyncpg is imported only when used
        return PostgresDatabase(settings.database.url, pool_size=settings.database.pool_size)
    from server.storage.db import Database
    return Database(settings.db_path, readers=readers, inline_budget=settings.database.sqlite_inline_read_ms / 1000,
                    write_budget=settings.database.sqlite_inline_write_ms / 1000)

"""Storage errors that callers may handle, the same whichever database is in use."""

from __future__ import annotations


class IntegrityError(Exception):
    """A constraint refused a write (unique, foreign key, check, or a trigger guarding a table).
    The transaction it happened in is rolled back when the exception leaves it."""


class DatabaseUnavailable(Exception):
    """The database could not be reached (PostgreSQL down, restarting, or the network between)."""

"""The few SQL constructs SQLite and PostgreSQL spell differently, one method each.

Storage code writes SQL in the subset both engines accept (`?` placeholders, also numbered `?1`;
`INSERT ... ON CONFLICT DO NOTHING / DO UPDATE`; `RETURNING`; `CAST(? AS BIGINT)` where a bare
parameter's type cannot be inferred) and asks `db.dialect` for the rest. The PostgreSQL database
turns `?` into `$n` itself (server/storage/postgres.py), so placeholders are not a dialect concern.

Adding a construct: a method on Dialect with the SQLite spelling, overridden in PostgresDialect.
"""

from __future__ import annotations

from typing import NamedTuple


def marks(n: int) -> str:
    """The placeholders of an `IN (...)` list of n values (both engines spell them alike)."""
    return ",".join("?" * n)


class TextMatch(NamedTuple):
    """Full-text search over statuses, as the pieces of a query."""

    source: str  # FROM clause that yields the statuses as `s`
    condition: str  # WHERE condition: every wanted term, none of the excluded ones
    params: list[str]  # for the placeholders in source and condition, in order
    newest_first: str  # ORDER BY that reads matches newest first, so a LIMIT stops early


class Dialect:
    """SQLite's spelling (the default backend)."""

    name = "sqlite"
    # Appended to a SELECT that reads rows the transaction is about to change. SQLite has one writer
    # at a time (BEGIN IMMEDIATE), so nothing can change them in between.
    for_update = ""
    # Appended to a SELECT that claims queue rows (jobs, deliveries): rows another transaction holds are
    # passed over instead of waited for. SQLite's single writer never meets a held row.
    skip_locked = ""
    # Collation that compares text by code point, for range scans such as prefix look-ups.
    binary_collation = "BINARY"
    # An expression for the oldest transaction still running when the statement's snapshot was taken,
    # or None where ids in a feed (invalidations) are handed out in the order transactions commit:
    # SQLite's one writer commits one transaction at a time, so a reader that saw id n has seen every
    # id below it.
    snapshot_horizon: str | None = None

    def skip_locked_of(self, alias: str) -> str:
        """skip_locked for a SELECT that joins tables: lock (and skip) rows of `alias` only."""
        return ""

    def greatest(self, *exprs: str) -> str:
        """The largest of the expressions (SQLite's multi-argument max)."""
        return f"max({', '.join(exprs)})"

    def json_array_elements(self, json_text: str, key: str | None = None) -> str:
        """A table of the elements of a JSON array held as text (or of the array under `key` of a
        JSON object), with a column `value`; invalid JSON gives no rows. Use with an alias."""
        path = f", '$.{key}'" if key else ""
        return f"json_each(CASE WHEN json_valid({json_text}) THEN {json_text} ELSE '[]' END{path})"

    def json_item_text(self, element: str, index: int) -> str:
        """The `index`th item of an array-valued element (from json_array_elements) as text."""
        return f"json_extract({element}, '$[{int(index)}]')"

    def json_element_text(self, element: str) -> str:
        """A scalar element (from json_array_elements) as text."""
        return f"CAST({element} AS TEXT)"

    def contains(self, text: str, part: str) -> str:
        """`text` contains `part` (both SQL expressions), case as given."""
        return f"instr({text}, {part}) > 0"

    def ends_with(self, text: str, part: str) -> str:
        return f"substr({text}, -length({part})) = {part}"

    def status_text_match(self, wanted: list[str], excluded: list[str]) -> TextMatch:
        """Statuses containing every wanted term (a word or a phrase) and none of the excluded ones.
        FTS5: each term a quoted string, so nothing the user typed is query syntax."""
        expr = " AND ".join(_fts5_string(t) for t in wanted)
        for t in excluded:
            expr += f" NOT {_fts5_string(t)}"
        return TextMatch("status_search JOIN statuses s ON s.id = status_search.rowid", "status_search MATCH ?",
                         [expr], "status_search.rowid DESC")


class PostgresDialect(Dialect):
    name = "postgres"
    # Concurrent transactions are real here: lock the rows a read-modify-write is about to change.
    for_update = " FOR UPDATE"
    skip_locked = " FOR UPDATE SKIP LOCKED"
    binary_collation = '"C"'
    # Identity values are taken at insert, not at commit: see schema/postgres/0039.
    snapshot_horizon = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"

    def skip_locked_of(self, alias: str) -> str:
        return f" FOR UPDATE OF {alias} SKIP LOCKED"

    def greatest(self, *exprs: str) -> str:
        return f"greatest({', '.join(exprs)})"

    def json_array_elements(self, json_text: str, key: str | None = None) -> str:
        # crosstalk_json_array (schema/postgres) parses leniently: not JSON or not an array → [].
        source = f"crosstalk_json_array({json_text}, {_literal(key)})" if key else f"crosstalk_json_array({json_text})"
        return f"jsonb_array_elements({source})"

    def json_item_text(self, element: str, index: int) -> str:
        return f"({element} ->> {int(index)})"

    def json_element_text(self, element: str) -> str:
        return f"({element} #>> '{{}}')"

    def contains(self, text: str, part: str) -> str:
        return f"strpos({text}, {part}) > 0"

    def ends_with(self, text: str, part: str) -> str:
        return f"right({text}, length({part})) = {part}"

    def status_text_match(self, wanted: list[str], excluded: list[str]) -> TextMatch:
        # phraseto_tsquery reads any text as words in sequence and never fails; the terms are folded
        # as the indexed text is (crosstalk_search_text, schema/postgres).
        def phrase(negated: bool) -> str:
            return f"{'!! ' if negated else ''}phraseto_tsquery('simple', crosstalk_search_text(?))"

        query = " && ".join([phrase(False) for _ in wanted] + [phrase(True) for _ in excluded])
        return TextMatch("statuses s", f"s.search_document @@ ({query})", [*wanted, *excluded], "s.id DESC")


def _fts5_string(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _literal(text: str) -> str:
    if not text.replace("_", "").isalnum():
        raise ValueError(f"not a plain JSON key: {text!r}")
    return f"'{text}'"


SQLITE = Dialect()
POSTGRES = PostgresDialect()

"""The indexes behind the queue's search that the models cannot declare (migration
``0007_helpdesk_queue``), and how a search uses them on each database.

* **Error text** (a substring, any case): on SQLite an FTS5 table with the ``trigram``
  tokenizer, kept in step with ``helpdesk_requests.error_message`` by triggers; on PostgreSQL a
  ``pg_trgm`` GIN index on ``lower(error_message)``.  Both answer a substring of three or more
  characters from the index; a shorter one (or a database without them) is a scan.
  On SQLite the FTS5 table also indexes the queue's filter columns (status, kind, role,
  console, environment: migration ``0026_hdperf2``), so that a search with a filter is
  narrowed inside the index (:func:`column_term`) instead of row by row.
* **Prefixes of email and User ID keys**: PostgreSQL needs ``varchar_pattern_ops`` indexes for
  ``LIKE 'abc%'`` under a non-C collation; SQLite compares with BINARY, so a range on the
  existing indexes is a prefix match.

Alembic's autogenerate must not offer to drop what it cannot see in the models:
``portal.db.include_name`` hides these objects from it.
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import text

from portal import search_text
from portal.extensions import db

FTS_TABLE = "helpdesk_requests_fts"
#: Trigram indexes answer substrings of at least this many characters.
MIN_INDEXED = 3
EXTENSION_KEY = "portal.helpdesk.search_index"


def available() -> bool:
    """Whether this database has the error-text index (looked up once per app)."""
    return bool(_looked_up()["available"])


def fts_columns() -> frozenset[str]:
    """The columns the SQLite FTS5 table indexes (none elsewhere; looked up once per app)."""
    columns = _looked_up()["columns"]
    assert isinstance(columns, list)
    return frozenset(columns)


def _looked_up() -> dict[str, object]:
    cache: dict[str, object] = current_app.extensions.setdefault(EXTENSION_KEY, {})
    if "available" not in cache:
        columns: list[str] = []
        if db.engine.dialect.name == "sqlite":
            query = text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name")
            found = db.session.scalar(query, {"name": FTS_TABLE})
            if found is not None:
                columns = [
                    row[1] for row in db.session.execute(text(f"PRAGMA table_info({FTS_TABLE})"))
                ]
        else:
            query = text("SELECT 1 FROM pg_indexes WHERE indexname = :name")
            found = db.session.scalar(query, {"name": "ix_helpdesk_requests_error_message_trgm"})
        cache["available"] = found is not None
        cache["columns"] = columns
    return cache


def column_term(column: str, value: str) -> str:
    """An FTS5 query term: ``column`` holds ``value`` (a substring, as trigrams match: callers
    pass only values no other allowed value contains, :func:`exact_by_trigrams`)."""
    return "{" + column + "}: " + search_text.fts_phrase(value)


def exact_by_trigrams(value: str, allowed: tuple[str, ...]) -> bool:
    """Whether "the column contains ``value``" means "equals ``value``" among ``allowed``: it
    has a trigram and is part of no other allowed value."""
    return len(value) >= MIN_INDEXED and not any(
        value in other for other in allowed if other != value
    )

"""The indexes behind the queue's search that the models cannot declare (migration
``0007_helpdesk_queue``), and how a search uses them on each database.

* **Error text** (a substring, any case): on SQLite an FTS5 table with the ``trigram``
  tokenizer, kept in step with ``helpdesk_requests.error_message`` by triggers; on PostgreSQL a
  ``pg_trgm`` GIN index on ``lower(error_message)``.  Both answer a substring of three or more
  characters from the index; a shorter one (or a database without them) is a scan.
* **Prefixes of email and User ID keys**: PostgreSQL needs ``varchar_pattern_ops`` indexes for
  ``LIKE 'abc%'`` under a non-C collation; SQLite compares with BINARY, so a range on the
  existing indexes is a prefix match.

Alembic's autogenerate must not offer to drop what it cannot see in the models:
``portal.db.include_name`` hides these objects from it.
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import text

from portal.extensions import db

FTS_TABLE = "helpdesk_requests_fts"
#: Trigram indexes answer substrings of at least this many characters.
MIN_INDEXED = 3
EXTENSION_KEY = "portal.helpdesk.search_index"


def available() -> bool:
    """Whether this database has the error-text index (looked up once per app)."""
    cache = current_app.extensions.setdefault(EXTENSION_KEY, {})
    if "available" not in cache:
        if db.engine.dialect.name == "sqlite":
            query = text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name")
            found = db.session.scalar(query, {"name": FTS_TABLE})
        else:
            query = text("SELECT 1 FROM pg_indexes WHERE indexname = :name")
            found = db.session.scalar(query, {"name": "ix_helpdesk_requests_error_message_trgm"})
        cache["available"] = found is not None
    return bool(cache["available"])

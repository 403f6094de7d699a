"""Finding users by a piece of their User ID, full name or email (substring, case-insensitive).

Both databases answer from a trigram index built by migration 0009_user_search, so a search
does not read every user of a large organisation:

* SQLite: the FTS5 table ``users_search`` (trigram tokenizer, kept in step by triggers), asked
  with a phrase ``MATCH``: a row matches when one of its keys contains the text.
* PostgreSQL: ``LIKE '%text%'`` on the keys, which the pg_trgm GIN indexes serve.

Text shorter than three characters has no trigram: it is matched with ``LIKE`` (a scan) on
both.  Either way the answer is the same: the casefolded text is a substring of a key.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement
from sqlalchemy import Integer
from sqlalchemy import column
from sqlalchemy import or_
from sqlalchemy import text

from portal.accounts.models import User
from portal.extensions import db
from portal.keys import normalise_key
from portal.search_text import LIKE_ESCAPE
from portal.search_text import contains_pattern
from portal.search_text import fts_phrase

#: A trigram index can only answer text at least this long.
TRIGRAM = 3
KEYS = (User.user_id_key, User.full_name_key, User.email_key)

_FTS = text("SELECT rowid FROM users_search WHERE users_search MATCH :phrase").columns(
    column("rowid", Integer)
)


def matches(q: str) -> ColumnElement[bool]:
    """A condition on User: one of its keys contains ``q`` (casefolded, trimmed)."""
    needle = normalise_key(q)
    if len(needle) >= TRIGRAM and db.session.get_bind().dialect.name == "sqlite":
        return User.id.in_(_FTS.bindparams(phrase=fts_phrase(needle)))
    pattern = contains_pattern(needle)
    return or_(*(key.like(pattern, escape=LIKE_ESCAPE) for key in KEYS))

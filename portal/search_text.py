"""What was typed into a search box, made safe for SQL: one home for query cleaning, ``LIKE``
patterns and full-text phrases (docs/architecture.md §3, rule 10).

Every ``LIKE`` built from these uses :data:`LIKE_ESCAPE` as its escape character.
"""

from __future__ import annotations

#: The escape character of every pattern below: pass it as ``.like(…, escape=LIKE_ESCAPE)``.
LIKE_ESCAPE = "\\"


def clean_query(text: str | None, max_length: int) -> str:
    """What was typed, printable characters only, trimmed and cut to ``max_length``."""
    return "".join(ch for ch in (text or "") if ch.isprintable()).strip()[:max_length]


def escape_like(text: str) -> str:
    """``text`` with the ``LIKE`` wildcards (and the escape character) taken literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contains_pattern(text: str) -> str:
    """A ``LIKE`` pattern for "contains ``text``"."""
    return f"%{escape_like(text)}%"


def starts_with_pattern(text: str) -> str:
    """A ``LIKE`` pattern for "starts with ``text``"."""
    return escape_like(text) + "%"


def fts_phrase(text: str) -> str:
    """``text`` as one SQLite FTS5 phrase: a quoted string (no operators), quotes doubled."""
    return '"' + text.replace('"', '""') + '"'

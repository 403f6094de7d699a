"""Page numbers and counts for the paginated lists (one home: docs/architecture.md §3, rule 10).

Each list keeps its own limits and messages; these are the arithmetic and the parsing they
share, so a huge or malformed ``page`` never reaches the database as an OFFSET.
"""

from __future__ import annotations

import re

_DIGITS = re.compile(r"[0-9]{1,9}")


def whole_number(raw: str | None, low: int, high: int) -> int | None:
    """``raw`` as a whole number from ``low`` to ``high``; None when blank or not one."""
    text = (raw or "").strip()
    if _DIGITS.fullmatch(text) and low <= int(text) <= high:
        return int(text)
    return None


def page_count(total: int, per_page: int) -> int:
    """How many pages ``total`` rows fill (at least one, for the empty list)."""
    return max(1, -(-total // per_page))


def offset(page: int, per_page: int) -> int:
    """The OFFSET of page ``page`` (from 1)."""
    return (page - 1) * per_page

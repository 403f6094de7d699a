"""Counting the SQL statements a block runs (the "no N+1" tests)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from portal.extensions import db


@contextmanager
def counting_statements(*, selects_only: bool = False) -> Iterator[list[str]]:
    """Every statement run on ``db.engine`` inside the block (only SELECTs when asked)."""
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not selects_only or statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", before)

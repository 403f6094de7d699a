"""The users list as CSV (docs/rules.md §9): the list's filters apply; streamed from a
server-side cursor in batches, so memory stays flat at 100,000 rows.

Columns as the contract names them; dates ``YYYY-MM-DD``, times ISO 8601 UTC, booleans
``true``/``false``; a cell a spreadsheet would run as a formula gets a leading ``'`` (the
import removes it, so an export imports back unchanged).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC
from datetime import date
from datetime import datetime
from typing import Any

from portal import clock
from portal.accounts import queries
from portal.accounts import rules
from portal.accounts.models import User
from portal.audit.export import filename_part
from portal.audit.export import safe_cell
from portal.extensions import db

COLUMNS = (
    "user_id",
    "full_name",
    "email",
    "profile",
    "expires_on",
    "state",
    "reason",
    "enabled",
    "active",
    "last_login_at",
    "has_second_factor",
)
BATCH = 2_000
_STATE = {
    (True, True): rules.Access.HAS_ACCESS.value,
    (False, True): rules.Access.SYSTEM_DISABLED.value,
    (False, False): rules.Access.REMOVED.value,
}


def has_second_factor(user_pk: int) -> bool:
    """Does this user have a second factor (R10)?  ``false`` until it exists."""
    return False  # wired by the second-factor work


def boolean(value: bool) -> str:
    return "true" if value else "false"


def day(value: date | None) -> str:
    return value.isoformat() if value is not None else ""


def moment(value: datetime | None) -> str:
    """ISO 8601 in UTC (``2026-12-03T02:50:00Z``)."""
    if value is None:
        return ""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def csv_record(row: Any) -> list[str]:
    return [
        safe_cell(cell)
        for cell in (
            row.user_id,
            row.full_name,
            row.email,
            row.profile,
            day(row.expires_on),
            _STATE.get((row.enabled, row.active), rules.Access.REMOVED.value),
            row.disabled_reason or "",
            boolean(row.enabled),
            boolean(row.active),
            moment(row.last_login_at),
            boolean(has_second_factor(row.id)),
        )
    ]


def csv_lines(org_id: int, filters: queries.UserFilters) -> Iterator[str]:
    """The CSV text, one batch at a time (a UTF-8 BOM first, so that Excel reads it as UTF-8)."""
    stmt = (
        queries.filtered(org_id, filters, clock.now(), clock.today())
        .with_only_columns(
            User.id,
            User.user_id,
            User.full_name,
            User.email,
            User.profile,
            User.expires_on,
            User.enabled,
            User.active,
            User.disabled_reason,
            User.last_login_at,
        )
        .order_by(User.user_id_key)
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow(COLUMNS)
    result = db.session.execute(stmt.execution_options(stream_results=True, yield_per=BATCH))
    try:
        for batch in result.partitions():
            writer.writerows(csv_record(r) for r in batch)
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        if buffer.tell():
            yield buffer.getvalue()
    finally:
        result.close()


def filename(organisation: str, today: date) -> str:
    return f"users-{filename_part(organisation)}-{today.isoformat()}.csv"

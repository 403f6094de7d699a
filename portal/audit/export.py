"""The audit log as CSV (docs/rules.md R9): streamed in batches, with spreadsheet formulas
neutralised (docs/security.md)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from zoneinfo import ZoneInfo

from portal.audit.queries import Filters
from portal.audit.queries import Row
from portal.audit.queries import events_query
from portal.audit.queries import to_row
from portal.extensions import db

#: Rows fetched per batch while streaming the CSV.
CSV_BATCH = 500

CSV_HEADER = (
    "When (UTC)",
    "When (local)",
    "Time zone",
    "Who",
    "Who (name)",
    "What",
    "What (code)",
    "To whom",
    "To whom (name)",
    "Why",
    "Details",
    "IP address",
)

#: A cell starting with one of these is read as a formula by spreadsheets (OWASP CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """The cell as text; one that a spreadsheet would run as a formula gets a leading ``'``."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_record(row: Row, tz: str) -> list[str]:
    return [
        safe_cell(cell)
        for cell in (
            row.occurred_at.isoformat(timespec="seconds"),
            row.local.isoformat(timespec="seconds"),
            tz,
            row.actor,
            row.actor_name,
            row.kind_label,
            row.kind,
            row.subject,
            row.subject_name,
            row.reason_label,
            row.details,
            row.ip,
        )
    ]


def csv_lines(f: Filters, tz: str) -> Iterator[str]:
    """The CSV text, one batch of rows at a time (the rows are never all in memory)."""
    zone = ZoneInfo(tz)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    result = db.session.execute(events_query(f).execution_options(yield_per=CSV_BATCH))
    for batch in result.partitions():
        for r in batch:
            writer.writerow(csv_record(to_row(r, zone), tz))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()
    result.close()


def filename_part(text: str) -> str:
    """``text`` (an organisation's name) as a safe piece of a file name."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-")
    return slug[:40].strip("-") or "organisation"


def filename(organisation: str, today_iso: str) -> str:
    return f"audit-{filename_part(organisation)}-{today_iso}.csv"

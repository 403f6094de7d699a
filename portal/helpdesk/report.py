"""The Helpdesk report (issue 14 point 7): volume by week, error code, profile, console and
environment; median time to first reply and to resolve in business hours; how often
suggestions were shown before a form was sent, and how often they answered instead
(deflection, ``portal.helpdesk.page_views``).

Every figure is a set-based query over the requests created in the range (the ``created_at``
index): GROUP BY for the counts, ORDER BY … OFFSET for the medians, over the facts
``report_facts`` keeps on each request as it happens (the error code, the working time to the
first reply and to resolution).  Weeks are local Monday-to-Sunday weeks (PORTAL_TIMEZONE), told
apart by a CASE on their boundaries, so a week is the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement
from sqlalchemy import and_
from sqlalchemy import case
from sqlalchemy import func
from sqlalchemy import select

from portal import messages
from portal.extensions import db
from portal.helpdesk import business_hours
from portal.helpdesk import page_views
from portal.helpdesk import report_facts  # noqa: F401  (registers the facts' model events)
from portal.helpdesk.models import CONSOLE_LABELS
from portal.helpdesk.models import ENVIRONMENT_LABELS
from portal.helpdesk.models import KIND_LABELS
from portal.helpdesk.models import ROLE_LABELS
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import RequestKind

#: The range shown when none is chosen: this week and the eleven before it.
DEFAULT_WEEKS = 12
#: The longest range one report covers (the weekly CASE grows with it).
MAX_WEEKS = 104
NO_MESSAGE = "No message (screenshot only)"
OTHER_TEXT = "Other text (no guide entry recognised)"
NOT_STATED = "Not stated (Resend Admin User ID)"

R = HelpdeskRequest
_DIMENSIONS: tuple[tuple[str, Any, dict[Any, str]], ...] = (
    ("kind", R.kind, KIND_LABELS),
    ("role", R.stated_role, ROLE_LABELS),
    ("console", R.console, CONSOLE_LABELS),
    ("environment", R.environment, ENVIRONMENT_LABELS),
)


@dataclass(frozen=True)
class DateRange:
    """Local dates, both included."""

    start: date
    end: date

    @classmethod
    def default(cls, today: date) -> DateRange:
        monday = today - timedelta(days=today.weekday())
        return cls(monday - timedelta(weeks=DEFAULT_WEEKS - 1), today)

    def instants(self, tz: str) -> tuple[datetime, datetime]:
        """[start, end) as aware datetimes: local midnight of ``start`` and of the day after
        ``end``."""
        zone = ZoneInfo(tz)
        begin = datetime.combine(self.start, time(0), zone)
        stop = datetime.combine(self.end + timedelta(days=1), time(0), zone)
        return begin, stop

    def week_starts(self) -> list[date]:
        """The first day of each week in the range: ``start``, then every Monday after it."""
        days = [self.start]
        monday = self.start - timedelta(days=self.start.weekday()) + timedelta(weeks=1)
        while monday <= self.end:
            days.append(monday)
            monday += timedelta(weeks=1)
        return days


@dataclass(frozen=True)
class Row:
    label: str
    count: int
    #: The guide entry (code) the row is about, when it is one.
    code: str | None = None


@dataclass
class Report:
    range: DateRange
    weeks: list[tuple[date, int]]
    total: int
    by_kind: list[Row]
    by_code: list[Row]
    by_profile: list[Row]
    by_console: list[Row]
    by_environment: list[Row]
    contact_total: int
    after_suggestions: int
    replied: int
    median_first_reply: int | None
    resolved: int
    median_resolve: int | None
    views_with_suggestions: int
    views_sent: int
    hours: business_hours.WorkingHours = field(
        repr=False, default_factory=business_hours.WorkingHours
    )

    @property
    def deflected(self) -> int:
        return self.views_with_suggestions - self.views_sent

    @staticmethod
    def share(part: int, whole: int) -> str:
        return f"{part / whole:.0%}" if whole else "–"

    @property
    def after_suggestions_share(self) -> str:
        return self.share(self.after_suggestions, self.contact_total)

    @property
    def deflection_rate(self) -> str:
        return self.share(self.deflected, self.views_with_suggestions)

    def describe(self, seconds: int | None) -> str:
        if seconds is None:
            return "–"
        return business_hours.describe(seconds, self.hours)


def _in_range(begin: datetime, stop: datetime) -> ColumnElement[bool]:
    return and_(R.created_at >= begin, R.created_at < stop)


def _count(*conditions: ColumnElement[bool]) -> Any:
    return select(func.count()).select_from(R).where(*conditions).scalar_subquery()


def _per_week(begin: datetime, starts: list[datetime], stop: datetime) -> list[int]:
    """One statement: a count per week, each an index range on ``created_at``."""
    bounds = [*starts[1:], stop]
    counts = [
        _count(R.created_at >= low, R.created_at < high)
        for low, high in zip([begin, *starts[1:]], bounds, strict=True)
    ]
    return [int(n) for n in db.session.execute(select(*counts)).one()]


def _dimensions(where: ColumnElement[bool]) -> dict[str, Any]:
    """One pass over the range (no sort): a conditional sum per value of each dimension."""
    columns: dict[str, Any] = {"total": func.count()}
    for name, column, labels in _DIMENSIONS:
        for value in labels:
            columns[f"{name}:{value}"] = func.sum(case((column == value, 1), else_=0))
    shown = and_(R.kind == RequestKind.CONTACT.value, R.suggestions_shown.is_not(None))
    columns["after_suggestions"] = func.sum(case((shown, 1), else_=0))
    row = db.session.execute(select(*columns.values()).where(where)).one()
    return {key: int(value or 0) for key, value in zip(columns, row, strict=True)}


def _rows(counts: dict[str, Any], name: str, labels: Mapping[Any, str], missing: str) -> list[Row]:
    rows = [Row(label, counts[f"{name}:{value}"]) for value, label in labels.items()]
    rest = counts["total"] - sum(row.count for row in rows)
    rows = [row for row in rows if row.count]
    return [*rows, Row(missing, rest)] if rest else rows


def _by_code(where: ColumnElement[bool]) -> list[Row]:
    """One statement: a count per guide entry (and for other text, and none), each an index
    range (kind, error_code, created_at)."""
    contact = R.kind == RequestKind.CONTACT.value
    keys: list[str | None] = [*messages.BY_CODE, "", None]
    counts = [
        _count(where, contact, R.error_code.is_(None) if key is None else R.error_code == key)
        for key in keys
    ]
    found = db.session.execute(select(*counts)).one()
    out = []
    for key, count in zip(keys, found, strict=True):
        if not count:
            continue
        if key:
            out.append(Row(f"{key}: {messages.BY_CODE[key].headline}", int(count), code=key))
        else:
            out.append(Row(NO_MESSAGE if key is None else OTHER_TEXT, int(count)))
    return sorted(out, key=lambda row: -row.count)


def _median(begin: datetime, stop: datetime, column: Any) -> tuple[int, int | None]:
    """(how many requests have ``column``, the median of it): the middle row(s) in order, read
    by OFFSET (neither database has one median function both offer)."""
    count = int(
        db.session.scalar(select(func.count()).where(_in_range(begin, stop), column.is_not(None)))
        or 0
    )
    if not count:
        return 0, None
    # Read in value order from the (column, created_at) index (migration 0025): the range is
    # checked inside it rather than used to enter another (COALESCE hides created_at from the
    # planner), so no sort of every value in the range (a year: 65 → 8 ms of SQL on SQLite).
    created = func.coalesce(R.created_at, R.created_at)
    middle = db.session.scalars(
        select(column)
        .where(created >= begin, created < stop, column.is_not(None))
        .order_by(column)
        .offset((count - 1) // 2)
        .limit(2 - count % 2)
    ).all()
    return count, int(statistics.median(middle))


def build(rng: DateRange, *, tz: str, now: datetime, hours: business_hours.WorkingHours) -> Report:
    begin, stop = rng.instants(tz)
    where = _in_range(begin, stop)
    zone = ZoneInfo(tz)
    starts = [datetime.combine(day, time(0), zone) for day in rng.week_starts()]

    weeks = list(zip(rng.week_starts(), _per_week(begin, starts, stop), strict=True))
    counts = _dimensions(where)

    replied, median_first_reply = _median(begin, stop, R.first_reply_seconds)
    resolved, median_resolve = _median(begin, stop, R.resolve_seconds)
    views_shown, views_sent = page_views.totals(begin, stop, now)
    return Report(
        range=rng,
        weeks=weeks,
        total=counts["total"],
        by_kind=_rows(counts, "kind", KIND_LABELS, "Other"),
        by_code=_by_code(where),
        by_profile=_rows(counts, "role", ROLE_LABELS, NOT_STATED),
        by_console=_rows(counts, "console", CONSOLE_LABELS, NOT_STATED),
        by_environment=_rows(counts, "environment", ENVIRONMENT_LABELS, "Other"),
        contact_total=counts[f"kind:{RequestKind.CONTACT.value}"],
        after_suggestions=counts["after_suggestions"],
        replied=replied,
        median_first_reply=median_first_reply,
        resolved=resolved,
        median_resolve=median_resolve,
        views_with_suggestions=views_shown,
        views_sent=views_sent,
        hours=hours,
    )


# --- CSV ---------------------------------------------------------------------------------------


def csv_rows(report: Report) -> Iterator[list[str]]:
    """The report's tables as (table, row, value) lines; the caller guards formulas."""
    yield ["Table", "Row", "Value"]
    yield ["Range", "From", report.range.start.isoformat()]
    yield ["Range", "To", report.range.end.isoformat()]
    for day, count in report.weeks:
        yield ["Requests per week", f"Week from {day.isoformat()}", str(count)]
    for title, rows in (
        ("Requests by type", report.by_kind),
        ("Contact Us requests by error code", report.by_code),
        ("Requests by stated profile", report.by_profile),
        ("Requests by console", report.by_console),
        ("Requests by environment", report.by_environment),
    ):
        for row in rows:
            yield [title, row.label, str(row.count)]
    for label, seconds, count in (
        ("Median time to first reply (working hours)", report.median_first_reply, report.replied),
        ("Median time to resolve (working hours)", report.median_resolve, report.resolved),
    ):
        value = "" if seconds is None else f"{business_hours.as_hours(seconds):.2f}"
        yield ["Times", label, value]
        yield ["Times", label.replace("Median time", "Requests counted for time"), str(count)]
    yield ["Suggestions", "Contact Us requests", str(report.contact_total)]
    yield ["Suggestions", "Sent after suggestions were shown", str(report.after_suggestions)]
    yield ["Deflection", "Page views with suggestions shown", str(report.views_with_suggestions)]
    yield ["Deflection", "Of which a form was sent within the hour", str(report.views_sent)]
    yield ["Deflection", "Deflected (no form within the hour)", str(report.deflected)]

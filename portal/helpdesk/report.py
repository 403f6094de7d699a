"""The Helpdesk report (issue 14 point 7): volume by week, error code, profile, console and
environment; median time to first reply and to resolve in business hours; how often
suggestions were shown before a form was sent, and how often they answered instead
(deflection, ``portal.helpdesk.page_views``).

Every count is one set-based query (GROUP BY) over the requests created in the range, on the
``created_at`` index; weeks are local Monday-to-Sunday weeks (PORTAL_TIMEZONE), told apart by
a CASE on their boundaries, so a week is the same on SQLite and PostgreSQL.  Only the medians
read one row per request that has a reply or a resolution (a median is not an aggregate either
database offers on both), turned into working time by ``business_hours``.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from collections.abc import Iterator
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
from sqlalchemy import literal
from sqlalchemy import or_
from sqlalchemy import select

from portal import messages
from portal.extensions import db
from portal.helpdesk import business_hours
from portal.helpdesk import page_views
from portal.helpdesk.models import CONSOLE_LABELS
from portal.helpdesk.models import ENVIRONMENT_LABELS
from portal.helpdesk.models import KIND_LABELS
from portal.helpdesk.models import ROLE_LABELS
from portal.helpdesk.models import EventKind
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import RequestEvent
from portal.helpdesk.models import RequestKind
from portal.helpdesk.models import Status

#: The range shown when none is chosen: this week and the eleven before it.
DEFAULT_WEEKS = 12
#: The longest range one report covers (the weekly CASE grows with it).
MAX_WEEKS = 104
NO_MESSAGE = "No message (screenshot only)"
OTHER_TEXT = "Other text (no guide entry recognised)"
NOT_STATED = "Not stated (Resend Admin User ID)"

#: Timeline events that answer the requester (the first one is the "first reply").
REPLY_KINDS = (EventKind.REPLY.value, EventKind.GUIDE_REPLY.value)

R = HelpdeskRequest


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


def _week_case(starts: list[datetime]) -> ColumnElement[Any]:
    """The index of the week ``created_at`` falls in (0 = the first)."""
    whens = [(R.created_at < boundary, index) for index, boundary in enumerate(starts[1:])]
    if not whens:
        return literal(0)
    return case(*whens, else_=len(starts) - 1)


def _code_case() -> ColumnElement[Any]:
    """The guide entry a request's error text names: a code it quotes first, then the message
    text it contains; ``''`` for other text and NULL for none (LIKE is case-insensitive here:
    ``ilike`` on PostgreSQL, ASCII LIKE on SQLite)."""
    quoted = [
        (R.error_message.icontains(m.code, autoescape=True), m.code) for m in messages.MESSAGES
    ]
    texts = sorted(messages.MESSAGES, key=lambda m: len(m.text), reverse=True)  # longest first
    written = [
        (R.error_message.icontains(m.text.rstrip("."), autoescape=True), m.code) for m in texts
    ]
    return case((R.error_message.is_(None), None), *quoted, *written, else_="")


def _counted(rows: Iterable[tuple[Any, int]], labels: dict[Any, str], missing: str) -> list[Row]:
    counts: dict[str, int] = {}
    for value, count in rows:
        label = labels.get(value, missing) if value is not None else missing
        counts[label] = counts.get(label, 0) + int(count)
    ordered = [label for label in labels.values() if label in counts]
    ordered += [label for label in counts if label not in ordered]
    return [Row(label, counts[label]) for label in ordered]


def _by_code(where: ColumnElement[bool]) -> list[Row]:
    code = _code_case().label("code")
    rows = db.session.execute(
        select(code, func.count())
        .where(where, R.kind == RequestKind.CONTACT.value)
        .group_by(code)
        .order_by(func.count().desc(), code)
    ).all()
    out = []
    for value, count in rows:
        if value is None:
            out.append(Row(NO_MESSAGE, int(count)))
        elif value == "":
            out.append(Row(OTHER_TEXT, int(count)))
        else:
            out.append(Row(f"{value}: {messages.BY_CODE[value].text}", int(count), code=value))
    return out


def _first_times(
    where: ColumnElement[bool],
) -> list[tuple[int, datetime, datetime | None, datetime | None]]:
    """Per request with a reply or a resolution: id, created, first reply (a written reply or a
    guide reply: both are emailed to the requester), first resolution (the first status change
    to Resolved, whoever made it)."""
    E = RequestEvent
    is_reply = E.kind.in_(REPLY_KINDS)
    is_resolve = and_(
        E.kind == EventKind.STATUS_CHANGED.value, E.to_status == Status.RESOLVED.value
    )
    rows = db.session.execute(
        select(
            R.id,
            R.created_at,
            func.min(case((is_reply, E.occurred_at))),
            func.min(case((is_resolve, E.occurred_at))),
        )
        .join(E, E.request_id == R.id)
        .where(where, or_(is_reply, is_resolve))
        .group_by(R.id, R.created_at)
    ).all()
    return [(row[0], row[1], row[2], row[3]) for row in rows]


def _waiting(where: ColumnElement[bool]) -> dict[int, list[tuple[datetime, datetime]]]:
    """Per request that waited on its requester: the intervals it waited (the clock paused)."""
    E = RequestEvent
    waiting = Status.WAITING.value
    rows = db.session.execute(
        select(E.request_id, E.occurred_at, E.from_status, E.to_status)
        .join(R, E.request_id == R.id)
        .where(where, or_(E.to_status == waiting, E.from_status == waiting))
        .order_by(E.request_id, E.occurred_at, E.id)
    ).all()
    paused: dict[int, list[tuple[datetime, datetime]]] = {}
    began: dict[int, datetime] = {}
    for request_id, occurred_at, from_status, to_status in rows:
        if from_status == waiting and request_id in began:
            paused.setdefault(request_id, []).append((began.pop(request_id), occurred_at))
        if to_status == waiting:
            began[request_id] = occurred_at
    for request_id, start in began.items():  # still waiting: paused until now (far future)
        paused.setdefault(request_id, []).append((start, start + timedelta(days=3650)))
    return paused


def _median(values: list[int]) -> int | None:
    return int(statistics.median(values)) if values else None


def build(rng: DateRange, *, tz: str, now: datetime, hours: business_hours.WorkingHours) -> Report:
    begin, stop = rng.instants(tz)
    where = _in_range(begin, stop)
    zone = ZoneInfo(tz)
    starts = [datetime.combine(day, time(0), zone) for day in rng.week_starts()]

    week = _week_case(starts).label("week")
    per_week = dict(
        db.session.execute(select(week, func.count()).where(where).group_by(week)).tuples().all()
    )
    weeks = [(day, int(per_week.get(i, 0))) for i, day in enumerate(rng.week_starts())]

    shown = R.suggestions_shown.is_not(None).label("shown")
    grouped = db.session.execute(
        select(R.kind, R.stated_role, R.console, R.environment, shown, func.count())
        .where(where)
        .group_by(R.kind, R.stated_role, R.console, R.environment, shown)
    ).all()
    total = sum(int(r[5]) for r in grouped)
    contact = [r for r in grouped if r[0] == RequestKind.CONTACT.value]

    firsts = _first_times(where)
    paused = _waiting(where) if firsts else {}
    first_reply: list[int] = []
    to_resolve: list[int] = []
    for request_id, created, reply, resolved in firsts:
        for moment, found in ((reply, first_reply), (resolved, to_resolve)):
            if moment is not None:
                found.append(
                    business_hours.elapsed(
                        business_hours.utc(created),
                        business_hours.utc(moment),
                        paused=paused.get(request_id, ()),
                        hours=hours,
                    )
                )

    views_shown, views_sent = page_views.totals(begin, stop, now)
    return Report(
        range=rng,
        weeks=weeks,
        total=total,
        by_kind=_counted(((r[0], r[5]) for r in grouped), dict(KIND_LABELS), "Other"),
        by_code=_by_code(where),
        by_profile=_counted(((r[1], r[5]) for r in grouped), dict(ROLE_LABELS), NOT_STATED),
        by_console=_counted(((r[2], r[5]) for r in grouped), dict(CONSOLE_LABELS), NOT_STATED),
        by_environment=_counted(((r[3], r[5]) for r in grouped), dict(ENVIRONMENT_LABELS), "Other"),
        contact_total=sum(int(r[5]) for r in contact),
        after_suggestions=sum(int(r[5]) for r in contact if r[4]),
        replied=len(first_reply),
        median_first_reply=_median(first_reply),
        resolved=len(to_resolve),
        median_resolve=_median(to_resolve),
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

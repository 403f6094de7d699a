"""Business hours: how long a Helpdesk request has been waiting for staff, in working time.

A working day is a weekday that is not a bank holiday in England and Wales (the ``holidays``
package, ``GB`` subdivision ``ENG``, substitute days included), from
``PORTAL_HELPDESK_DAY_STARTS`` to ``PORTAL_HELPDESK_DAY_ENDS`` (09:00–17:30 by default) on the
wall clock of ``PORTAL_TIMEZONE``.  Everything here is pure: no Flask, no database, no wall
clock; callers pass the times (aware datetimes) and the :class:`WorkingHours`.

The age of a request is measured on a *business clock*: :meth:`WorkingHours.clock` counts the
working seconds from a fixed origin (:data:`ORIGIN`) up to a moment, so the working time
between two moments is a subtraction (:func:`elapsed`), and a request that is running can be
stored as one number, the business-clock reading at which its age was zero (see
docs/architecture.md, "Helpdesk age in business hours").

The day is measured on the local wall clock: in the UK the clocks change at 01:00/02:00, never
inside working hours, so every working day has the same length.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays

#: The business clock reads 0 at the start of this date (a Monday).
ORIGIN = date(2000, 1, 3)
#: Bank holidays of England and Wales (``holidays.country_holidays("GB", subdiv="ENG")``).
COUNTRY = "GB"
SUBDIVISION = "ENG"

DEFAULT_DAY_STARTS = "09:00"
DEFAULT_DAY_ENDS = "17:30"
DEFAULT_TARGET_DAYS = 2

_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_time(raw: str, name: str = "time") -> time:
    """``HH:MM`` (24-hour) as a time; ValueError naming ``name`` otherwise."""
    match = _TIME.match(str(raw).strip())
    if not match:
        raise ValueError(f"{name}={raw!r}: expected a time of day as HH:MM, e.g. 09:00")
    return time(int(match.group(1)), int(match.group(2)))


@lru_cache(maxsize=512)
def _holidays_of(year: int) -> tuple[date, ...]:
    """The bank holidays of ``year`` that fall on a weekday (sorted)."""
    found = holidays.country_holidays(COUNTRY, subdiv=SUBDIVISION, years=year)
    return tuple(sorted(d for d in found if d.weekday() < 5))


def is_bank_holiday(day: date) -> bool:
    return day in _holidays_of(day.year)


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and not is_bank_holiday(day)


def _weekdays_before(day: date) -> int:
    """Weekdays from ORIGIN (a Monday) up to, not including, ``day`` (negative before it)."""
    days = (day - ORIGIN).days
    weeks, rest = divmod(days, 7)
    return weeks * 5 + min(rest, 5)


@lru_cache(maxsize=512)
def _holidays_before_year(year: int) -> int:
    """Weekday bank holidays from ORIGIN's year up to the start of ``year``."""
    return sum(len(_holidays_of(y)) for y in range(ORIGIN.year, year))


def working_days_before(day: date) -> int:
    """Working days from ORIGIN up to, not including, ``day`` (``day`` on or after ORIGIN)."""
    in_year = bisect_left(_holidays_of(day.year), day)
    return _weekdays_before(day) - _holidays_before_year(day.year) - in_year


@dataclass(frozen=True)
class WorkingHours:
    """The working day (local wall-clock times) and the zone it is read in."""

    starts: time = field(default_factory=lambda: parse_time(DEFAULT_DAY_STARTS))
    ends: time = field(default_factory=lambda: parse_time(DEFAULT_DAY_ENDS))
    timezone: str = "Europe/London"
    #: Overdue after this many working days of age.
    target_days: int = DEFAULT_TARGET_DAYS

    def __post_init__(self) -> None:
        if self.ends <= self.starts:
            raise ValueError(
                f"the working day must end after it starts ({self.starts:%H:%M}–{self.ends:%H:%M})"
            )
        if self.target_days < 1:
            raise ValueError("the overdue target must be at least one working day")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> WorkingHours:
        """From the settings (portal/config.py): PORTAL_HELPDESK_DAY_STARTS / _DAY_ENDS,
        PORTAL_HELPDESK_TARGET_DAYS, PORTAL_TIMEZONE."""
        return cls(
            starts=parse_time(
                config.get("PORTAL_HELPDESK_DAY_STARTS") or DEFAULT_DAY_STARTS,
                "PORTAL_HELPDESK_DAY_STARTS",
            ),
            ends=parse_time(
                config.get("PORTAL_HELPDESK_DAY_ENDS") or DEFAULT_DAY_ENDS,
                "PORTAL_HELPDESK_DAY_ENDS",
            ),
            timezone=str(config.get("PORTAL_TIMEZONE") or "Europe/London"),
            target_days=int(config.get("PORTAL_HELPDESK_TARGET_DAYS") or DEFAULT_TARGET_DAYS),
        )

    @property
    def day_seconds(self) -> int:
        """The length of one working day in seconds (8.5 hours = 30,600 by default)."""
        start = self.starts.hour * 3600 + self.starts.minute * 60
        end = self.ends.hour * 3600 + self.ends.minute * 60
        return end - start

    @property
    def target_seconds(self) -> int:
        """The overdue target in business seconds."""
        return self.target_days * self.day_seconds

    def clock(self, moment: datetime) -> int:
        """Working seconds from ORIGIN to ``moment`` (aware; 0 before ORIGIN)."""
        if moment.tzinfo is None:
            raise ValueError("business hours need an aware datetime")
        local = moment.astimezone(ZoneInfo(self.timezone))
        day = local.date()
        if day < ORIGIN:
            return 0
        whole = working_days_before(day) * self.day_seconds
        if not is_working_day(day):
            return whole
        into = local.hour * 3600 + local.minute * 60 + local.second
        start = self.starts.hour * 3600 + self.starts.minute * 60
        return whole + max(0, min(into - start, self.day_seconds))

    def is_overdue(self, age_seconds: int) -> bool:
        return age_seconds > self.target_seconds


Interval = tuple[datetime, datetime]


def _merged(intervals: Iterable[Interval]) -> list[Interval]:
    """Non-empty intervals, sorted, overlapping ones joined."""
    out: list[Interval] = []
    for begin, end in sorted((a, b) for a, b in intervals if b > a):
        if out and begin <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((begin, end))
    return out


def elapsed(
    start: datetime,
    end: datetime,
    *,
    paused: Iterable[Interval] = (),
    hours: WorkingHours | None = None,
) -> int:
    """Working seconds from ``start`` to ``end``, leaving out the ``paused`` intervals
    (``(from, to)`` pairs; they may overlap each other or reach outside ``start``–``end``).

    0 when ``end`` is not after ``start``.
    """
    wh = hours or WorkingHours()
    if end <= start:
        return 0
    total = wh.clock(end) - wh.clock(start)
    for begin, stop in _merged(paused):
        begin, stop = max(begin, start), min(stop, end)
        if stop > begin:
            total -= wh.clock(stop) - wh.clock(begin)
    return total


def as_hours(seconds: int) -> float:
    return seconds / 3600


def describe(seconds: int, hours: WorkingHours | None = None) -> str:
    """A short label for an age: "45m", "3h 10m", "2d 1h" (days of working hours)."""
    wh = hours or WorkingHours()
    minutes = max(0, seconds) // 60
    day_minutes = wh.day_seconds // 60
    days, rest = divmod(minutes, day_minutes)
    h, m = divmod(rest, 60)
    if days:
        return f"{days}d {h}h"
    if h:
        return f"{h}h {m:02d}m"
    return f"{m}m"


def utc(moment: datetime) -> datetime:
    """``moment`` as aware UTC (naive values from SQLite are UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def from_app() -> WorkingHours:
    """The current app's working hours (the defaults outside an app)."""
    try:
        from flask import current_app

        return WorkingHours.from_config(current_app.config)
    except RuntimeError:  # no application context
        return WorkingHours()

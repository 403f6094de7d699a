"""Business hours (portal/helpdesk/business_hours.py): fixed moments over weekends, bank holidays
and paused periods, and properties that hold for any moments (hypothesis)."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from portal.helpdesk import business_hours as bh
from portal.helpdesk.business_hours import WorkingHours
from portal.helpdesk.business_hours import elapsed

LONDON = ZoneInfo("Europe/London")
DAY = 8.5 * 3600
HOURS = WorkingHours()


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=LONDON)


def test_a_working_day_is_eight_and_a_half_hours() -> None:
    assert HOURS.day_seconds == DAY
    assert elapsed(at(2026, 11, 30, 9), at(2026, 11, 30, 17, 30)) == DAY
    assert elapsed(at(2026, 11, 30, 0), at(2026, 12, 1, 0)) == DAY  # Monday, whole


def test_outside_the_day_counts_nothing() -> None:
    assert elapsed(at(2026, 11, 30, 18), at(2026, 12, 1, 8, 59)) == 0
    assert elapsed(at(2026, 11, 30, 17), at(2026, 12, 1, 9, 30)) == 3600


def test_a_weekend_is_skipped() -> None:
    # Friday 16:30 → Monday 10:00: one hour on Friday, one on Monday.
    assert elapsed(at(2026, 11, 27, 16, 30), at(2026, 11, 30, 10)) == 2 * 3600
    assert elapsed(at(2026, 11, 28, 10), at(2026, 11, 29, 15)) == 0


def test_a_bank_holiday_is_skipped() -> None:
    # Easter 2026: Good Friday 3 April, Easter Monday 6 April.
    assert elapsed(at(2026, 4, 2, 17), at(2026, 4, 7, 9, 30)) == 3600
    assert not bh.is_working_day(at(2026, 4, 6).date())
    # Boxing Day 2026 is a Saturday: Monday 28 December is the substitute day.
    assert not bh.is_working_day(at(2026, 12, 28).date())
    assert elapsed(at(2026, 12, 24, 9), at(2026, 12, 30, 9)) == 2 * DAY  # 24th and 29th


def test_paused_periods_are_left_out() -> None:
    start, end = at(2026, 11, 30, 9), at(2026, 12, 2, 17, 30)  # Mon–Wed: 3 days
    assert elapsed(start, end) == 3 * DAY
    paused = [(at(2026, 11, 30, 13), at(2026, 12, 1, 13))]  # one working day
    assert elapsed(start, end, paused=paused) == 2 * DAY
    overlapping = [*paused, (at(2026, 12, 1, 12), at(2026, 12, 1, 14))]
    assert elapsed(start, end, paused=overlapping) == 2 * DAY - 3600
    outside = [(at(2026, 11, 1), at(2026, 11, 30, 10)), (at(2026, 12, 2, 17), at(2026, 12, 9))]
    assert elapsed(start, end, paused=outside) == 3 * DAY - 3600 - 1800


def test_the_clock_change_does_not_change_the_day() -> None:
    # Sunday 29 March 2026 the UK moves to BST: Monday is still 8.5 hours.
    assert elapsed(at(2026, 3, 27, 9), at(2026, 3, 30, 17, 30)) == 2 * DAY
    utc_start = datetime(2026, 3, 30, 8, 0, tzinfo=UTC)  # 09:00 BST
    assert elapsed(utc_start, utc_start + timedelta(hours=1)) == 3600


def test_settings_and_target() -> None:
    wh = WorkingHours.from_config(
        {
            "PORTAL_HELPDESK_DAY_STARTS": "08:00",
            "PORTAL_HELPDESK_DAY_ENDS": "16:00",
            "PORTAL_HELPDESK_TARGET_DAYS": 3,
            "PORTAL_TIMEZONE": "Europe/London",
        }
    )
    assert wh.day_seconds == 8 * 3600
    assert wh.target_seconds == 24 * 3600
    assert wh.is_overdue(24 * 3600 + 1)
    assert not wh.is_overdue(24 * 3600)
    assert WorkingHours.from_config({}).target_seconds == 2 * DAY
    with pytest.raises(ValueError, match="PORTAL_HELPDESK_DAY_STARTS"):
        WorkingHours.from_config({"PORTAL_HELPDESK_DAY_STARTS": "9am"})
    with pytest.raises(ValueError, match="end after"):
        WorkingHours.from_config({"PORTAL_HELPDESK_DAY_ENDS": "08:00"})


def test_describe() -> None:
    assert bh.describe(0) == "0m"
    assert bh.describe(45 * 60) == "45m"
    assert bh.describe(3 * 3600 + 600) == "3h 10m"
    assert bh.describe(int(2 * DAY) + 3600) == "2d 1h"


moments = st.datetimes(
    min_value=datetime(2019, 1, 1), max_value=datetime(2031, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=300, deadline=None)
@given(moments, moments, moments)
def test_elapsed_adds_up(a: datetime, b: datetime, c: datetime) -> None:
    a, b, c = sorted((a, b, c))
    assert elapsed(a, c) == elapsed(a, b) + elapsed(b, c)


@settings(max_examples=300, deadline=None)
@given(moments, st.integers(min_value=0, max_value=40 * 24 * 3600))
def test_elapsed_is_bounded(a: datetime, seconds: int) -> None:
    b = a + timedelta(seconds=seconds)
    got = elapsed(a, b)
    assert 0 <= got <= seconds
    # At most 8.5 hours in any 24, so never more than whole days' worth plus one day.
    assert got <= (seconds // 86400 + 1) * DAY


@settings(max_examples=200, deadline=None)
@given(moments, moments, st.lists(st.tuples(moments, moments), max_size=4))
def test_pausing_never_adds_time(a: datetime, b: datetime, pauses: list) -> None:  # type: ignore[type-arg]
    a, b = sorted((a, b))
    intervals = [tuple(sorted(p)) for p in pauses]
    got = elapsed(a, b, paused=intervals)  # type: ignore[arg-type]
    assert 0 <= got <= elapsed(a, b)
    # Pausing the whole span leaves nothing.
    assert elapsed(a, b, paused=[(a, b)]) == 0


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=datetime(2019, 1, 1).date(), max_value=datetime(2031, 12, 31).date()))
def test_a_day_counts_in_full_exactly_when_it_is_a_working_day(day) -> None:  # type: ignore[no-untyped-def]
    start = datetime(day.year, day.month, day.day, tzinfo=LONDON)
    end = start + timedelta(days=1)
    expected = DAY if day.weekday() < 5 and not bh.is_bank_holiday(day) else 0
    assert elapsed(start, end) == expected

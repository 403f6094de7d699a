"""The only code that reads the wall clock.

Everything else takes ``now`` (an aware UTC datetime) and ``today`` (a date in the portal's
time zone) as arguments or asks this module.  Tests move time with :func:`frozen` or
:func:`advance` instead of sleeping (Keycloak's ``setTimeOffset`` approach).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from zoneinfo import ZoneInfo

DEFAULT_TIMEZONE = "Europe/London"

_fixed: datetime | None = None
_offset = timedelta(0)


def now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    if _fixed is not None:
        return _fixed + _offset
    return datetime.now(UTC) + _offset


def today(tz: str | None = None) -> date:
    """Today's date in the portal's time zone (``PORTAL_TIMEZONE``)."""
    return local_date(now(), tz)


def local_date(moment: datetime, tz: str | None = None) -> date:
    """The calendar date of ``moment`` in time zone ``tz`` (default: the configured one)."""
    return moment.astimezone(ZoneInfo(tz or configured_timezone())).date()


def configured_timezone() -> str:
    """The ``PORTAL_TIMEZONE`` of the current app, or Europe/London outside an app."""
    try:
        from flask import current_app

        return str(current_app.config.get("PORTAL_TIMEZONE") or DEFAULT_TIMEZONE)
    except RuntimeError:  # no application context
        return DEFAULT_TIMEZONE


@contextmanager
def frozen(moment: datetime) -> Iterator[None]:
    """Freeze the clock at ``moment`` (aware) for the duration of the block."""
    global _fixed, _offset
    if moment.tzinfo is None:
        raise ValueError("frozen() needs an aware datetime")
    saved = (_fixed, _offset)
    _fixed, _offset = moment.astimezone(UTC), timedelta(0)
    try:
        yield
    finally:
        _fixed, _offset = saved


def advance(delta: timedelta) -> None:
    """Move the (possibly frozen) clock forward by ``delta``."""
    global _offset
    _offset += delta


def reset() -> None:
    """Back to the real wall clock (tests call this between tests)."""
    global _fixed, _offset
    _fixed, _offset = None, timedelta(0)

"""How the portal shows dates, times and counts: one format everywhere (issue 12 point 5).

* :func:`when`: a date as "3 Nov 2026"; an aware time as "3 Nov 2026 14:05" in
  ``PORTAL_TIMEZONE``.  Every page uses it (the Jinja filters ``when`` and, for older
  templates, ``localtime``), so lists, the dashboard, the audit log and a user's page agree.
* :func:`plural`: "1 user", "2 users" (never "1 users").
"""

from __future__ import annotations

from datetime import date
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app

#: English month abbreviations, whatever the machine's locale (``%b`` follows the locale).
MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def when(value: date | datetime | None, empty: str = "–") -> str:
    """``value`` as the portal shows it; ``empty`` for None.  (Formatted by hand, not with
    ``strftime``: a users page shows a hundred of these.)"""
    if value is None:
        return empty
    if isinstance(value, datetime):
        local = value.astimezone(ZoneInfo(current_app.config["PORTAL_TIMEZONE"]))
        return (
            f"{local.day} {MONTHS[local.month]} {local.year:04d} "
            f"{local.hour:02d}:{local.minute:02d}"
        )
    return f"{value.day} {MONTHS[value.month]} {value.year:04d}"


def plural(
    count: int, singular: str, plural_form: str | None = None, *, with_count: bool = True
) -> str:
    """``count`` (with thousands separators) and the words that agree with it: "1 user",
    "2 users", ``plural(n, "user has", "users have")``; only the words when not ``with_count``."""
    words = singular if count == 1 else (plural_form or singular + "s")
    return f"{count:,} {words}" if with_count else words

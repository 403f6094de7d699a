"""The service-wide limits on stored screenshots (docs/security.md UP-05): a daily quota, in number
and in bytes, and a cap on the total stored.

Counted from what is stored (set-based: one indexed range of today's requests, and the sum of
the screenshots' lengths, which neither database reads the images for), so deleting requests
frees room and nothing can drift.  Checked twice: before a screenshot is decoded (a full quota
costs no CPU) and, with the re-encoded size, in the transaction that stores it (on PostgreSQL
under a transaction-level advisory lock, on SQLite under the write lock: concurrent uploads
cannot overshoot).  A refusal is a message by the screenshot field: the sender may type the
exact error message instead and send the form without a screenshot.  Each refusal is logged as
a warning for the operator.
"""

from __future__ import annotations

import logging
from datetime import UTC
from datetime import datetime
from datetime import time
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text

from portal import clock
from portal.extensions import db
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import Screenshot

log = logging.getLogger(__name__)

MB = 1024 * 1024
#: pg_advisory_xact_lock key: one screenshot stored at a time, only while quotas are checked.
_LOCK_KEY = 0x53435254  # "SCRT"

DAILY_QUOTA_REACHED = (
    "The Helpdesk cannot take more screenshots today: type the exact error message instead, "
    "and send the form without a screenshot"
)
STORAGE_FULL = (
    "The Helpdesk cannot store more screenshots just now: type the exact error message "
    "instead, and send the form without a screenshot"
)


class UploadQuotaReached(Exception):
    """A screenshot over a quota; ``str(exc)`` is the message for the sender."""


def _start_of_today(now: datetime) -> datetime:
    zone = ZoneInfo(clock.configured_timezone())
    return datetime.combine(clock.local_date(now), time(0), zone).astimezone(UTC)


def refusal(now: datetime, size: int = 0) -> str | None:
    """Why one more screenshot of ``size`` bytes (0: not decoded yet) may not be stored."""
    config = current_app.config
    per_day = int(config["PORTAL_SCREENSHOTS_PER_DAY"])
    bytes_per_day = int(config["PORTAL_SCREENSHOT_MB_PER_DAY"]) * MB
    storage = int(config["PORTAL_SCREENSHOT_STORAGE_MB"]) * MB
    size = max(size, 1)
    stored_today, bytes_today = db.session.execute(
        select(func.count(Screenshot.id), func.coalesce(func.sum(func.length(Screenshot.data)), 0))
        .join(HelpdeskRequest, HelpdeskRequest.id == Screenshot.request_id)
        .where(HelpdeskRequest.created_at >= _start_of_today(now))
    ).one()
    if stored_today + 1 > per_day or bytes_today + size > bytes_per_day:
        log.warning(
            "screenshot refused: daily quota reached (%d screenshots, %d MB today)",
            stored_today,
            bytes_today // MB,
        )
        return DAILY_QUOTA_REACHED
    total = db.session.scalar(select(func.coalesce(func.sum(func.length(Screenshot.data)), 0)))
    if (total or 0) + size > storage:
        log.warning("screenshot refused: storage cap reached (%d MB stored)", (total or 0) // MB)
        return STORAGE_FULL
    return None


def check_before_storing(now: datetime, size: int) -> None:
    """In the transaction that stores a screenshot: raise :class:`UploadQuotaReached`."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    message = refusal(now, size)
    if message is not None:
        raise UploadQuotaReached(message)

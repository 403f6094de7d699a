"""Did the Troubleshooting Guide answer before a form was sent?  Deflection, counted from
aggregates (docs/security.md, "The Contact Us page-view id").

Each rendering of the Contact Us form carries a random **page-view id** in a hidden field (no
cookie, nothing in the session).  The "Check this first" request sends it along; the first time
suggestions are shown for it, a row ``(id, shown_at)`` is kept in :class:`PageView`; a form
sent from that page sets its ``sent_at``.  The row holds nothing about a person: no address, no
request, no account, and the id is never written anywhere else.

Once the hour after ``shown_at`` has passed the outcome is known, and the nightly run
(:func:`fold`) adds the row to its hour's counters in :class:`DeflectionHour` and deletes it:
only counts remain.  A page view is **deflected** when suggestions were shown and no form was
sent from it within the hour.

The id is signed (``SECRET_KEY``), so only ids this server handed out are counted; someone who
requests the form many times can still add rows, which is why the suggestions are limited per
address like the forms and the rows live a day at most.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from datetime import timedelta

from flask import current_app
from itsdangerous import BadSignature
from itsdangerous import Signer
from sqlalchemy import CheckConstraint
from sqlalchemy import Executable
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from portal.db import UTCDateTime
from portal.extensions import db

#: The form field that carries the id (a hidden input of the Contact Us form).
FIELD = "page_view"
#: A form sent within this time of the suggestions counts as "not deflected".
WINDOW = timedelta(hours=1)
_SALT = "helpdesk-page-view"
_RANDOM = re.compile(r"^[A-Za-z0-9_-]{22}$")
#: The id plus its signature: ``<22 random>.<signature>``.
MAX_LENGTH = 64


class PageView(db.Model):  # type: ignore[name-defined]
    """A Contact Us page view for which suggestions were shown; kept until :func:`fold`."""

    __tablename__ = "helpdesk_page_views"
    __table_args__ = (
        CheckConstraint("sent_at IS NULL OR sent_at >= shown_at", name="sent_after_shown"),
        Index("ix_helpdesk_page_views_shown_at", "shown_at"),
    )

    id: Mapped[str] = mapped_column(String(22), primary_key=True)
    shown_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class DeflectionHour(db.Model):  # type: ignore[name-defined]
    """Per hour (UTC, of ``shown_at``): page views with suggestions, and those sent within the
    hour."""

    __tablename__ = "helpdesk_deflection_hours"
    __table_args__ = (CheckConstraint("shown >= 0 AND sent >= 0 AND sent <= shown", name="counts"),)

    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    shown: Mapped[int] = mapped_column(Integer)
    sent: Mapped[int] = mapped_column(Integer)


def _signer() -> Signer:
    return Signer(current_app.config["SECRET_KEY"], salt=_SALT)


def new_id() -> str:
    """A fresh, signed page-view id for one rendering of the form."""
    return _signer().sign(secrets.token_urlsafe(16)).decode()


def parse(value: object) -> str | None:
    """The random part of a signed id this server issued; None for anything else."""
    if not isinstance(value, str) or len(value) > MAX_LENGTH:
        return None
    try:
        raw = _signer().unsign(value).decode()
    except BadSignature:
        return None
    return raw if _RANDOM.match(raw) else None


def _insert() -> Executable:
    if db.engine.dialect.name == "postgresql":
        return postgresql.insert(PageView).on_conflict_do_nothing()
    return sqlite.insert(PageView).on_conflict_do_nothing()


def suggestions_shown(page_view: str | None, now: datetime) -> None:
    """Suggestions were shown on this page view (once is enough: later ones change nothing).
    The caller commits."""
    if page_view is None:
        return
    db.session.execute(_insert(), {"id": page_view, "shown_at": now})


def form_sent(page_view: str | None, now: datetime) -> None:
    """A form was sent from this page view (nothing happens when no suggestion was shown)."""
    if page_view is None:
        return
    db.session.execute(
        update(PageView)
        .where(PageView.id == page_view, PageView.sent_at.is_(None), PageView.shown_at <= now)
        .values(sent_at=now)
    )


def _sent_within(shown_at: datetime, sent_at: datetime | None) -> bool:
    return sent_at is not None and sent_at <= shown_at + WINDOW


def fold(now: datetime) -> dict[str, int]:
    """Add every page view whose hour has passed to its hour's counters, and delete it (in
    the caller's transaction).  Idempotent: a row is counted once, as it is deleted.  The rows
    are at most a day's page views with suggestions, so they are summed here, not in SQL."""
    decided = PageView.shown_at <= now - WINDOW
    counts: dict[datetime, list[int]] = {}
    for shown_at, sent_at in db.session.execute(
        select(PageView.shown_at, PageView.sent_at).where(decided)
    ):
        hour = shown_at.replace(minute=0, second=0, microsecond=0)
        pair = counts.setdefault(hour, [0, 0])
        pair[0] += 1
        pair[1] += _sent_within(shown_at, sent_at)
    for hour, (shown, sent) in counts.items():
        existing = db.session.get(DeflectionHour, hour)
        if existing is None:
            db.session.add(DeflectionHour(hour=hour, shown=shown, sent=sent))
        else:
            existing.shown += shown
            existing.sent += sent
    db.session.execute(delete(PageView).where(decided))
    db.session.flush()
    return {"folded": sum(shown for shown, _sent in counts.values()), "hours": len(counts)}


def totals(start: datetime, end: datetime, now: datetime) -> tuple[int, int]:
    """(page views with suggestions, of which a form was sent within the hour) for page views
    shown in ``[start, end)``: the folded hours plus the rows already decided but not yet
    folded.  Hours are whole: an hour counts when it starts in the range."""
    folded = db.session.execute(
        select(
            func.coalesce(func.sum(DeflectionHour.shown), 0),
            func.coalesce(func.sum(DeflectionHour.sent), 0),
        ).where(DeflectionHour.hour >= start, DeflectionHour.hour < end)
    ).one()
    pending = db.session.execute(
        select(PageView.shown_at, PageView.sent_at).where(
            PageView.shown_at >= start, PageView.shown_at < end, PageView.shown_at <= now - WINDOW
        )
    ).all()
    shown = int(folded[0]) + len(pending)
    sent = int(folded[1]) + sum(_sent_within(p.shown_at, p.sent_at) for p in pending)
    return shown, sent

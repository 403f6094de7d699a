"""The read side of the audit log (docs/rules.md R9, §4): an organisation's events as rows
with labels, filtered by User ID, kind and a time range.  Used by the Console's pages and by
the CSV export."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select
from sqlalchemy import distinct
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import aliased

from portal import paging
from portal.accounts import states
from portal.accounts.models import User
from portal.audit import kinds
from portal.audit.models import AuditEvent
from portal.extensions import db

REASON_LABELS = {
    **{reason.value: cause for reason, cause in states.REASON_CAUSES.items()},
    "unknown_user_id": "unknown User ID",
    "console": "not allowed in the Admin Console",
    "change": "wrong current password",
    "refused_self": "cannot change own access",
    "refused_last_admin": "last Administrator with access",
    "refused_expired": "expiry date reached: extend it first",
    "refused_past_date": "date in the past",
}


def reason_label(reason: str | None) -> str:
    if not reason:
        return ""
    return REASON_LABELS.get(reason) or reason.replace("_", " ")


@dataclass(frozen=True, slots=True)
class Filters:
    organisation_id: int
    user: str | None = None
    kind: str | None = None
    start: datetime | None = None  # inclusive, UTC
    end: datetime | None = None  # exclusive, UTC


def day_bounds(first: date | None, last: date | None, tz: str) -> tuple[datetime | None, ...]:
    """The UTC instants from the start of ``first`` to the end of ``last`` (both inclusive),
    as calendar dates in time zone ``tz``: ``[start, end)``."""
    zone = ZoneInfo(tz)
    start = datetime.combine(first, time.min, tzinfo=zone).astimezone(UTC) if first else None
    end = (
        datetime.combine(last + timedelta(days=1), time.min, tzinfo=zone).astimezone(UTC)
        if last
        else None
    )
    return start, end


Actor = aliased(User, name="actor_user")
Subject = aliased(User, name="subject_user")


def events_query(f: Filters) -> Select[Any]:
    """The organisation's events matching ``f``, newest first, with the users' current names."""
    stmt = (
        select(
            AuditEvent.id,
            AuditEvent.occurred_at,
            AuditEvent.actor,
            Actor.full_name.label("actor_name"),
            AuditEvent.kind,
            AuditEvent.subject,
            Subject.full_name.label("subject_name"),
            AuditEvent.reason,
            AuditEvent.details,
            AuditEvent.ip,
        )
        .outerjoin(Actor, Actor.id == AuditEvent.actor_id)
        .outerjoin(Subject, Subject.id == AuditEvent.subject_id)
        .where(AuditEvent.organisation_id == f.organisation_id)
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
    )
    if f.user:
        wanted = func.lower(f.user)
        stmt = stmt.where(
            or_(func.lower(AuditEvent.actor) == wanted, func.lower(AuditEvent.subject) == wanted)
        )
    if f.kind:
        stmt = stmt.where(AuditEvent.kind == f.kind)
    if f.start is not None:
        stmt = stmt.where(AuditEvent.occurred_at >= f.start)
    if f.end is not None:
        stmt = stmt.where(AuditEvent.occurred_at < f.end)
    return stmt


def kinds_in_use(organisation_id: int) -> list[str]:
    """The kinds of the organisation's events, in the order of their labels."""
    return sorted(
        db.session.scalars(
            select(distinct(AuditEvent.kind)).where(AuditEvent.organisation_id == organisation_id)
        ),
        key=kinds.label,
    )


@dataclass(frozen=True, slots=True)
class Row:
    id: int
    occurred_at: datetime
    local: datetime
    actor: str
    actor_name: str | None
    kind: str
    kind_label: str
    subject: str | None
    subject_name: str | None
    reason: str | None
    reason_label: str
    details: str | None
    ip: str | None


def to_row(r: Any, zone: ZoneInfo) -> Row:
    return Row(
        id=r.id,
        occurred_at=r.occurred_at,
        local=r.occurred_at.astimezone(zone),
        actor=r.actor,
        actor_name=r.actor_name,
        kind=r.kind,
        kind_label=kinds.label(r.kind),
        subject=r.subject,
        subject_name=r.subject_name,
        reason=r.reason,
        reason_label=reason_label(r.reason),
        details=r.details,
        ip=r.ip,
    )


def page(f: Filters, *, number: int, per_page: int, zone: ZoneInfo) -> tuple[list[Row], bool]:
    """Page ``number`` (from 1) of the events, and whether a later page has any."""
    fetched = db.session.execute(
        events_query(f).limit(per_page + 1).offset(paging.offset(number, per_page))
    ).all()
    return [to_row(r, zone) for r in fetched[:per_page]], len(fetched) > per_page

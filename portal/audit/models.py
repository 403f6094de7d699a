"""Audit events (R9): append-only.  There is no update or delete path, and the ORM refuses one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import event
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import Session
from sqlalchemy.orm import mapped_column

from portal.db import UTCDateTime
from portal.extensions import db

SYSTEM = "system"


class AuditEvent(db.Model):  # type: ignore[name-defined]
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_org_occurred", "organisation_id", "occurred_at"),
        #: The users list's "disabled by whom, when" (the latest disable of each user shown):
        #: without it SQLite walks every disable event of the kind (no planner statistics).
        Index("ix_audit_events_subject_kind_id", "subject_id", "kind", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: The organisation whose Administrators may read this event (NULL: operator-level).
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id"), nullable=True
    )
    kind: Mapped[str] = mapped_column(String(40), index=True)
    #: Who: a user's row id, or NULL for the system.  ``actor`` keeps the readable name.
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    actor: Mapped[str] = mapped_column(String(64))
    #: To whom.
    subject_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id"), nullable=True, index=True
    )
    subject: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: Why: a rules.Reason or a refusal outcome.
    reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    details: Mapped[str | None] = mapped_column(Text, nullable=True)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(300), nullable=True)


class AppendOnlyError(RuntimeError):
    pass


@event.listens_for(Session, "before_flush")
def _refuse_changes(session: Session, _ctx: Any, _instances: Any) -> None:
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, AuditEvent) and (obj in session.deleted or session.is_modified(obj)):
            raise AppendOnlyError("audit events are append-only")

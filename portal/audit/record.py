"""Recording audit events: called by services only, inside the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from typing import Any

from flask import has_request_context
from flask import request

from portal.audit.models import SYSTEM
from portal.audit.models import AuditEvent
from portal.extensions import db

if TYPE_CHECKING:
    from portal.accounts.models import User


def _request_facts() -> dict[str, Any]:
    if not has_request_context():
        return {}
    return {
        "ip": (request.remote_addr or "")[:64] or None,
        "user_agent": (request.user_agent.string or "")[:300] or None,
    }


def record(
    kind: str,
    *,
    actor: User | None,
    subject: User | None,
    now: datetime,
    reason: str | None = None,
    details: str | None = None,
    organisation_id: int | None = None,
    actor_label: str | None = None,
) -> AuditEvent:
    """Add one event to the session (flushed and committed by the caller)."""
    org = organisation_id
    if org is None and subject is not None:
        org = subject.organisation_id
    if org is None and actor is not None:
        org = actor.organisation_id
    ev = AuditEvent(
        occurred_at=now,
        organisation_id=org,
        kind=str(kind),
        actor_id=actor.id if actor is not None else None,
        actor=actor.user_id if actor is not None else (actor_label or SYSTEM),
        subject_id=subject.id if subject is not None else None,
        subject=subject.user_id if subject is not None else None,
        reason=str(reason) if reason is not None else None,
        details=details,
        **_request_facts(),
    )
    db.session.add(ev)
    return ev

"""The one writer of a helpdesk request's timeline (docs/rules.md §5): every event staff see on a
request's page is added here, whoever causes it (the sender, staff, the Portal team, the
system)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from portal.audit.models import SYSTEM
from portal.extensions import db
from portal.helpdesk.models import EventKind
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import RequestEvent

if TYPE_CHECKING:
    from portal.accounts.models import User

#: The width of ``request_events.actor``.
ACTOR_MAX = 64


def add_event(
    req: HelpdeskRequest,
    kind: EventKind,
    actor: User | None,
    now: datetime,
    *,
    details: str | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
    actor_name: str | None = None,
) -> RequestEvent:
    """Add one event to ``req``'s timeline (flushed and committed by the caller).

    The actor is a user, or else ``actor_name`` (a sender who was not logged in), or else the
    system.
    """
    name = actor.user_id if actor is not None else (actor_name or SYSTEM)
    ev = RequestEvent(
        request_id=req.id,
        occurred_at=now,
        kind=kind.value,
        actor_id=actor.id if actor is not None else None,
        actor=name[:ACTOR_MAX],
        from_status=from_status,
        to_status=to_status,
        details=details,
    )
    db.session.add(ev)
    return ev

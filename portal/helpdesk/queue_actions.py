"""Working the queue: assignment (take, give to a colleague) and bulk status changes.

As in :mod:`portal.helpdesk.actions`, each function runs inside the caller's
``write_transaction`` and adds one timeline event per thing that happened; nothing here changes
an account.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select

from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.extensions import db
from portal.helpdesk import actions
from portal.helpdesk.models import EventKind
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import Status
from portal.helpdesk.timeline import add_event
from portal.mail_queue import QueuedMail

#: At most this many requests in one bulk change (a page is 50).
BULK_MAX = 100
STAFF_PROFILES = (Profile.HELPDESK.value, Profile.PORTAL_TEAM.value)


class NotStaff(ValueError):
    """The chosen assignee is not a Helpdesk or Portal team user."""


def staff_user(pk: int) -> User | None:
    user = db.session.get(User, pk)
    if user is None or user.profile not in STAFF_PROFILES:
        return None
    return user


def assign(pk: int, assignee_id: int | None, *, actor: User, now: datetime) -> bool:
    """Give the request to ``assignee_id`` (None: nobody); True when it changed (an
    ``assigned`` event naming who, and from whom)."""
    assignee = None
    if assignee_id is not None:
        assignee = staff_user(assignee_id)
        if assignee is None:
            raise NotStaff(assignee_id)
    req = actions.lock_request(pk)
    if req.assigned_to_id == assignee_id:
        return False
    before = db.session.get(User, req.assigned_to_id) if req.assigned_to_id else None
    if assignee is None:
        details = f"Unassigned (was {before.user_id})" if before else "Unassigned"
    elif assignee.id == actor.id:
        details = f"Taken by {actor.user_id}" + (f" (was {before.user_id})" if before else "")
    else:
        details = f"Given to {assignee.user_id}" + (f" (was {before.user_id})" if before else "")
    req.assigned_to_id = assignee_id
    req.updated_at = now
    add_event(req, EventKind.ASSIGNED, actor, now, details=details)
    return True


def bulk_set_status(
    pks: Iterable[int],
    status: Status,
    *,
    actor: User,
    now: datetime,
    mails: list[QueuedMail] | None = None,
) -> tuple[int, int]:
    """Set ``status`` on each request (as one by one: an event and an audit line each, and
    resolving tells each requester, the notices appended to ``mails`` for the caller's
    ``deliver_soon``).  Returns (changed, unchanged); unknown ids are skipped."""
    wanted = sorted(set(pks))[:BULK_MAX]
    existing = set(
        db.session.scalars(select(HelpdeskRequest.id).where(HelpdeskRequest.id.in_(wanted)))
    )
    changed = 0
    for pk in wanted:
        if pk in existing and actions.set_status(
            pk, status, actor=actor, now=now, tell=True, mails=mails
        ):
            changed += 1
    return changed, len(existing) - changed

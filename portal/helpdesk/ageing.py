"""A Helpdesk request's age in business hours, stored so that the queue sorts by it cheaply.

The age is the working time (portal/helpdesk/business_hours.py) since the request arrived,
leaving out the time it spent waiting on the requester (``waiting``) or resolved: the clock
*pauses* in those statuses and runs in every other one (a request referred to the Portal team
keeps ageing).

Why three columns (docs/architecture.md §8): computing each age
from the timeline would read every request's events to sort 100,000 of them.  Instead the
business clock ``B(t)`` (working seconds since a fixed origin) turns the age of a running
request into ``B(now) - age_origin``, where ``age_origin = B(age_since) - age_seconds`` is
fixed while the clock runs.  So "oldest first" among running requests is ``age_origin``
ascending (an indexed column), and a paused request's age is the stored ``age_seconds``
(ordered by its own index).  The queue merges the two ordered lists (each cut at the page's
end), so a sort by age reads about one page of each index.

The columns change only when the status does: a mapper event here sees every status change made
through the ORM, whoever makes it, and uses the request's ``updated_at`` as the moment.
Changing the working hours (settings) moves every running request's age alike (their order
stays); ages stored while paused keep the hours they were counted in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import event
from sqlalchemy import inspect
from sqlalchemy.orm import Mapper

from portal import clock
from portal.accounts.models import normalise_key
from portal.helpdesk import business_hours
from portal.helpdesk.business_hours import WorkingHours
from portal.helpdesk.models import NAME_KEY_LENGTH
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import Status

#: The statuses in which the clock is paused.
PAUSED = frozenset({Status.WAITING.value, Status.RESOLVED.value})


def is_running(status: str) -> bool:
    return status not in PAUSED


def start(req: HelpdeskRequest, at: datetime, hours: WorkingHours) -> None:
    """Start (or keep) the clock running from ``at``."""
    if req.age_origin is not None:
        return
    req.age_since = at
    req.age_origin = hours.clock(business_hours.utc(at)) - (req.age_seconds or 0)


def stop(req: HelpdeskRequest, at: datetime, hours: WorkingHours) -> None:
    """Pause the clock at ``at``: the age so far goes into ``age_seconds``."""
    if req.age_origin is None:
        return
    req.age_seconds = max(0, hours.clock(business_hours.utc(at)) - req.age_origin)
    req.age_since = None
    req.age_origin = None


def follow_status(req: HelpdeskRequest, status: str, at: datetime, hours: WorkingHours) -> None:
    if is_running(status):
        start(req, at, hours)
    else:
        stop(req, at, hours)


def age_of(req: HelpdeskRequest, now_clock: int) -> int:
    """The age in business seconds, given ``now_clock`` = ``hours.clock(now)``."""
    if req.age_origin is None:
        return int(req.age_seconds or 0)
    return max(0, now_clock - int(req.age_origin))


@event.listens_for(HelpdeskRequest, "before_insert")
def _on_insert(_mapper: Mapper[Any], _connection: Connection, target: HelpdeskRequest) -> None:
    target.name_key = normalise_key(target.name or "")[:NAME_KEY_LENGTH]
    if target.age_seconds is None:
        target.age_seconds = 0
    status = target.status or Status.NEW.value
    if target.age_since is None and target.age_origin is None and is_running(status):
        start(target, target.created_at or clock.now(), business_hours.from_app())


@event.listens_for(HelpdeskRequest, "before_update")
def _on_update(_mapper: Mapper[Any], _connection: Connection, target: HelpdeskRequest) -> None:
    state: Any = inspect(target)
    if state.attrs.name.history.has_changes():
        target.name_key = normalise_key(target.name or "")[:NAME_KEY_LENGTH]
    if not state.attrs.status.history.has_changes():
        return
    updated = state.attrs.updated_at.history
    at = target.updated_at if updated.has_changes() and target.updated_at else clock.now()
    follow_status(target, target.status, at, business_hours.from_app())

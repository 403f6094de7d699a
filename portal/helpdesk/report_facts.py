"""The facts the Helpdesk report counts, kept on each request as they happen, so that the
report is GROUP BY and ORDER BY over columns, never a text match or a business-hours sum per
row (``bench/helpdesk.py``: within 200 ms at 100,000 requests).

* ``error_code``: the guide entry the error text names (a code it quotes, else a message's
  text it contains), set as the request is inserted; ``''`` for other text, NULL for none.
* ``first_reply_seconds``: working time (``business_hours``) from creation to the first reply
  (a written reply or a guide reply: both are emailed to the requester);
* ``resolve_seconds``: working time from creation to the first status change to Resolved.

Both leave out the time spent waiting on the requester (the clock is paused then, as for the
queue's age), and are set by the timeline event that ends them, whoever writes it (ORM events
on the models; registered when this module is imported, which the app factory does through
the report's views).  Bulk inserts that bypass the ORM (the bench) fill them themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from datetime import timedelta

from sqlalchemy import Connection
from sqlalchemy import event
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Mapper

from portal import messages
from portal.helpdesk import business_hours
from portal.helpdesk import suggestions
from portal.helpdesk.models import EventKind
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import RequestEvent
from portal.helpdesk.models import Status

#: Timeline events that answer the requester (the first one is the "first reply").
REPLY_KINDS = frozenset({EventKind.REPLY.value, EventKind.GUIDE_REPLY.value})
#: Message texts, longest first: a longer text containing a shorter one wins.
#: The whole texts, longest first, then the first sentences alone (messages.Message.headline).
_TEXTS = [
    *((m.text, m) for m in sorted(messages.MESSAGES, key=lambda m: len(m.text), reverse=True)),
    *(
        (m.headline, m)
        for m in sorted(messages.MESSAGES, key=lambda m: len(m.headline), reverse=True)
        if m.headline != m.text
    ),
]
#: A wait still open when the clock stops: paused up to the stop.
_OPEN = timedelta(days=3650)


def code_of(error_message: str | None) -> str | None:
    """The guide entry ``error_message`` names: the first code it quotes, else the longest
    message text it contains (any case), else the longest first sentence of one; ``''`` for
    other text, None for none."""
    if error_message is None:
        return None
    quoted = suggestions.codes_mentioned(error_message)
    if quoted:
        return quoted[0].code
    folded = error_message.casefold()
    for text, message in _TEXTS:
        if text.rstrip(".").casefold() in folded:
            return message.code
    return ""


def waits(
    changes: Iterable[tuple[datetime, str | None, str | None]],
) -> list[tuple[datetime, datetime]]:
    """The intervals a request waited on its requester, from its status changes
    ``(when, from_status, to_status)`` in order; a wait not ended yet stays open."""
    waiting = Status.WAITING.value
    out: list[tuple[datetime, datetime]] = []
    began: datetime | None = None
    for when, from_status, to_status in changes:
        if from_status == waiting and began is not None:
            out.append((began, when))
            began = None
        if to_status == waiting:
            began = when
    if began is not None:
        out.append((began, began + _OPEN))
    return out


def working_seconds(
    created: datetime,
    end: datetime,
    changes: Iterable[tuple[datetime, str | None, str | None]],
    hours: business_hours.WorkingHours,
) -> int:
    return business_hours.elapsed(
        business_hours.utc(created),
        business_hours.utc(end),
        paused=[(business_hours.utc(a), business_hours.utc(b)) for a, b in waits(changes)],
        hours=hours,
    )


@event.listens_for(HelpdeskRequest, "before_insert")
def _error_code_on_insert(
    _mapper: Mapper[HelpdeskRequest], _connection: Connection, target: HelpdeskRequest
) -> None:
    if target.error_code is None:
        target.error_code = code_of(target.error_message)


@event.listens_for(RequestEvent, "after_insert")
def _times_on_event(
    _mapper: Mapper[RequestEvent], connection: Connection, target: RequestEvent
) -> None:
    R = HelpdeskRequest
    if target.kind in REPLY_KINDS:
        column = R.first_reply_seconds
    elif (
        target.kind == EventKind.STATUS_CHANGED.value and target.to_status == Status.RESOLVED.value
    ):
        column = R.resolve_seconds
    else:
        return
    row = connection.execute(
        select(R.created_at, column).where(R.id == target.request_id)
    ).one_or_none()
    if row is None or row[1] is not None:
        return  # not the first
    E = RequestEvent
    waiting = Status.WAITING.value
    changes = connection.execute(
        select(E.occurred_at, E.from_status, E.to_status)
        .where(
            E.request_id == target.request_id,
            E.occurred_at <= target.occurred_at,
            or_(E.to_status == waiting, E.from_status == waiting),
        )
        .order_by(E.occurred_at, E.id)
    ).all()
    seconds = working_seconds(
        row[0], target.occurred_at, [tuple(c) for c in changes], business_hours.from_app()
    )
    connection.execute(
        update(R).where(R.id == target.request_id, column.is_(None)).values({column.key: seconds})
    )

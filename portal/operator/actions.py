"""What the Portal team does to an account, for a helpdesk request or not: re-enable (R6),
extend the expiry date, or both in one step (the usual fix for an expired User ID).

Each function goes through ``portal.accounts.management`` (and so ``rules``), which records the
audit events, with the request's reference in their details when there is one; an action that
changed something is also added to that request's timeline (an ``account_action`` event).
The caller runs it inside ``write_transaction``.
"""

from __future__ import annotations

from datetime import date
from datetime import datetime

from sqlalchemy import update

from portal.accounts import management
from portal.accounts import rules
from portal.accounts.models import User
from portal.extensions import db
from portal.helpdesk import timeline
from portal.helpdesk.models import EventKind as RequestEventKind
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import parse_reference
from portal.helpdesk.models import reference as format_reference
from portal.input_guard import MAX_ID

#: The largest id an INTEGER column holds (PostgreSQL refuses a larger value in a query).


class BadReference(ValueError):
    """A reference that is not one, or names no request (the message says which)."""


def linked_request(text: str | None) -> HelpdeskRequest | None:
    """The helpdesk request ``text`` names; None when ``text`` is empty.

    Raises :class:`BadReference` when ``text`` is not a reference or names no request.
    """
    text = (text or "").strip()
    if not text:
        return None
    request_id = parse_reference(text)
    if request_id is None:
        raise BadReference(f"{text[:20]!r} is not a helpdesk request reference (like HD-000123)")
    found = db.session.get(HelpdeskRequest, request_id) if request_id <= MAX_ID else None
    if found is None:
        raise BadReference(f"There is no helpdesk request {format_reference(request_id)}")
    return found


def _timeline(request: HelpdeskRequest | None, actor: User, details: str, now: datetime) -> None:
    if request is None:
        return
    timeline.add_event(request, RequestEventKind.ACCOUNT_ACTION, actor, now, details=details)
    db.session.execute(
        update(HelpdeskRequest)
        .where(HelpdeskRequest.id == request.id)
        .values(updated_at=now)
        .execution_options(synchronize_session=False)
    )


def _ref(request: HelpdeskRequest | None) -> str | None:
    return request.reference if request is not None else None


def reenable(
    actor: User,
    user: User,
    *,
    request: HelpdeskRequest | None,
    now: datetime,
    today: date,
) -> rules.Decision:
    """R6: tick Enabled (refused while the expiry date is reached)."""
    decision = management.set_enabled(
        actor, user, enabled=True, now=now, today=today, reference=_ref(request)
    )
    if decision.changed:
        _timeline(request, actor, f"Re-enabled {user.user_id}: access restored", now)
    return decision


def extend(
    actor: User,
    user: User,
    new_date: date,
    *,
    request: HelpdeskRequest | None,
    now: datetime,
    today: date,
) -> rules.Decision:
    """Change the expiry date (a past date is refused by the rules)."""
    old = management.lock_row(user).expires_on
    decision = management.set_expiry(
        actor, user, new_date, now=now, today=today, reference=_ref(request)
    )
    if decision.changed:
        _timeline(
            request,
            actor,
            f"Expiry date of {user.user_id} changed: {old or 'none'} -> {new_date}",
            now,
        )
    return decision


def extend_and_reenable(
    actor: User,
    user: User,
    new_date: date,
    *,
    request: HelpdeskRequest | None,
    now: datetime,
    today: date,
) -> tuple[rules.Decision, rules.Decision | None]:
    """Extend the expiry date, then re-enable: one step, one transaction.

    Returns both decisions; the second is None when the extension was refused (nothing is
    enabled then).  A new date that is today or earlier leaves the user expired, so R6 refuses
    the re-enable: the caller's form asks for a date after today.
    """
    old = management.lock_row(user).expires_on
    ref = _ref(request)
    extended = management.set_expiry(actor, user, new_date, now=now, today=today, reference=ref)
    if extended.outcome not in (rules.Outcome.OK, rules.Outcome.NO_CHANGE):
        return extended, None
    enabled = management.set_enabled(actor, user, enabled=True, now=now, today=today, reference=ref)
    done = []
    if extended.changed:
        done.append(f"Expiry date of {user.user_id} changed: {old or 'none'} -> {new_date}")
    if enabled.changed:
        done.append(f"Re-enabled {user.user_id}: access restored")
    if done:
        _timeline(request, actor, "; ".join(done), now)
    return extended, enabled

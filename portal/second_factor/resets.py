"""Resetting a user's second factor when every factor is lost (docs/rules.md R10; docs/security.md,
"Losing a second factor and the two-person rule").

Three doors, one effect (:func:`reset_factors`): every factor and recovery code of the user is
removed, the wrong-code count goes back to 0, every session of the user ends (the session token
rotates, so a half-finished login ends too), the reset is audited and the user is told by email
through the mail queue.  A password reset (R7) is not one of the doors: it never touches a
factor.

* :func:`admin_reset`: another Administrator of the user's organisation (Console).  Refused for
  oneself and for the organisation's last Administrator with access: those go to the Portal
  team.  Helpdesk and Portal team users belong to no organisation, so no Administrator reaches
  them.
* :func:`request_reset`, :func:`approve`, :func:`cancel`: the Portal team's two-person rule.  One
  member asks, naming a helpdesk request that exists; a *different* member approves within
  :data:`LIFETIME` (table ``second_factor_resets``); either, or any other member, may cancel.
* ``portal second-factor reset USER_ID`` (``commands.py``): break-glass on the server, audited
  with the operating-system account that ran it.

Functions here flush and never commit: the caller runs them inside ``write_transaction`` and
passes the returned mail to ``mail_queue.deliver_soon`` after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import date
from datetime import datetime
from datetime import timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import ColumnElement
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy import update

from portal import emails
from portal import mail_queue
from portal.accounts import management
from portal.accounts import rules
from portal.accounts import states
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.audit import kinds
from portal.audit.record import record
from portal.db import rowcount
from portal.extensions import db
from portal.helpdesk import timeline
from portal.helpdesk.models import EventKind as RequestEventKind
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import parse_reference
from portal.input_guard import MAX_ID
from portal.second_factor.models import RecoveryCode
from portal.second_factor.models import SecondFactor
from portal.second_factor.models import SecondFactorReset

MAIL_PURPOSE = "second_factor.reset"
#: A request not approved within this time can no longer be approved.
LIFETIME = timedelta(hours=24)
#: The profiles only the Portal team may reset (docs/rules.md R10): staff, and never by a firm.
STAFF = (Profile.HELPDESK.value, Profile.PORTAL_TEAM.value)


class Outcome(StrEnum):
    """What a reset action came to; every refusal has a sentence in :data:`REFUSALS`."""

    DONE = "done"
    REQUESTED = "requested"
    CANCELLED = "cancelled"
    SELF = "self"
    LAST_ADMINISTRATOR = "last_administrator"
    STAFF_USER = "staff_user"
    NOT_PORTAL_TEAM = "not_portal_team"
    OWN_REQUEST = "own_request"
    OWN_FACTORS = "own_factors"
    ALREADY_OPEN = "already_open"
    NOT_OPEN = "not_open"
    EXPIRED = "expired"


#: What the pages and the CLI say when a reset is refused ({user}: the User ID).
REFUSALS: dict[Outcome, str] = {
    Outcome.SELF: (
        "You cannot reset your own second factor: another Administrator of your organisation "
        "can, from your page in the Admin Console."
    ),
    Outcome.LAST_ADMINISTRATOR: (
        "{user} is the last Administrator with access in this organisation, so only the Portal "
        "team can reset this second factor (two of them must agree). Contact the Helpdesk and "
        "ask for a second-factor reset."
    ),
    Outcome.STAFF_USER: (
        "The second factor of a Helpdesk or Portal team user can only be reset by the Portal "
        "team, with a second member's approval."
    ),
    Outcome.NOT_PORTAL_TEAM: "Only the Portal team can do this.",
    Outcome.OWN_REQUEST: (
        "You asked for this reset, so you cannot approve it: another member of the Portal team "
        "must (two-person rule). You may cancel it."
    ),
    Outcome.OWN_FACTORS: (
        "You cannot ask for or approve a reset of your own second factor: two other members of "
        "the Portal team must."
    ),
    Outcome.ALREADY_OPEN: (
        "A reset of the second factor of {user} is already waiting for approval: approve or "
        "cancel that one."
    ),
    Outcome.NOT_OPEN: "This reset request was already approved or cancelled.",
    Outcome.EXPIRED: (
        "This reset request has expired (requests are open for 24 hours). Ask again if the "
        "reset is still needed."
    ),
}


@dataclass
class Result:
    outcome: Outcome
    request: SecondFactorReset | None = None
    #: Mail queued in this transaction: pass to ``mail_queue.deliver_soon`` after the commit.
    mails: list[mail_queue.QueuedMail] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        return self.outcome in REFUSALS

    def message(self, user_id: str) -> str:
        return REFUSALS[self.outcome].format(user=user_id)


# --- the one effect ----------------------------------------------------------------------------


def reset_factors(
    actor: User | None,
    user: User,
    *,
    now: datetime,
    details: str,
    actor_label: str | None = None,
) -> mail_queue.QueuedMail:
    """Remove every factor of ``user``, end its sessions, audit, and queue the email to it.

    The caller has decided that ``actor`` may; returns the queued notice.
    """
    user = management.lock_row(user)
    removed = remove_all_factors(user)
    user.apply(rules.factor_reset(user.to_state()))  # the wrong-code count starts again
    user.rotate_session_token()
    record(
        kinds.SECOND_FACTOR_RESET,
        actor=actor,
        subject=user,
        now=now,
        details=f"{details}; {removed} factor(s) removed",
        actor_label=actor_label,
    )
    db.session.flush()
    return _notice(user, now)


def remove_all_factors(user: User) -> int:
    """Delete every factor and recovery code of ``user``; how many factors there were."""
    removed = rowcount(
        db.session.execute(delete(SecondFactor).where(SecondFactor.user_id == user.id))
    )
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    return removed


def _notice(user: User, now: datetime) -> mail_queue.QueuedMail:
    body = emails.render(
        "second_factor_reset.txt",
        full_name=user.full_name,
        user_id=user.user_id,
        when=now.astimezone(ZoneInfo(current_app.config["PORTAL_TIMEZONE"])),
    )
    return mail_queue.enqueue(
        user.email,
        "Claims Portal: your second factor was reset",
        body,
        purpose=MAIL_PURPOSE,
        ref=user.user_id[:40],
    )


# --- another Administrator of the firm ---------------------------------------------------------


def admin_refusal(actor: User, user: User, *, now: datetime, today: date) -> Outcome | None:
    """Why ``actor`` (an Administrator of ``user``'s organisation) may not reset ``user``'s
    factors, or None when it may."""
    if user.profile in STAFF or user.organisation_id != actor.organisation_id:
        return Outcome.STAFF_USER
    if management.is_last_admin_with_access(user, now=now, today=today):
        return Outcome.LAST_ADMINISTRATOR
    if user.id == actor.id:
        return Outcome.SELF
    return None


def admin_reset(actor: User, user: User, *, now: datetime, today: date) -> Result:
    """The Console's "Reset second factor" (confirmed first by the page)."""
    management.lock_row(actor)  # serialises with changes to the organisation's Administrators
    refusal = admin_refusal(actor, user, now=now, today=today)
    if refusal is not None:
        record(
            kinds.SECOND_FACTOR_RESET_REFUSED, actor=actor, subject=user, now=now, reason=refusal
        )
        db.session.flush()
        return Result(refusal)
    mail = reset_factors(actor, user, now=now, details="by an Administrator of the organisation")
    return Result(Outcome.DONE, mails=[mail])


# --- the Portal team: two people ---------------------------------------------------------------


def status_of(req: SecondFactorReset, now: datetime) -> str:
    """``approved`` | ``cancelled`` | ``expired`` | ``pending`` (open: may be decided)."""
    if req.approved_at is not None:
        return "approved"
    if req.cancelled_at is not None:
        return "cancelled"
    if now >= req.expires_at:
        return "expired"
    return "pending"


def _open(now: datetime) -> ColumnElement[bool]:
    return (
        SecondFactorReset.approved_at.is_(None)
        & SecondFactorReset.cancelled_at.is_(None)
        & (SecondFactorReset.expires_at > now)
    )


def _is_portal_team(actor: User, now: datetime, today: date) -> bool:
    return actor.profile == Profile.PORTAL_TEAM.value and states.has_access(actor, now, today)


def _linked(reference: str) -> HelpdeskRequest | None:
    request_id = parse_reference(reference)
    if request_id is None or request_id > MAX_ID:
        return None
    return db.session.get(HelpdeskRequest, request_id)


def _timeline(reference: str, actor: User, details: str, now: datetime) -> None:
    linked = _linked(reference)
    if linked is None:  # erased with its firm meanwhile
        return
    timeline.add_event(linked, RequestEventKind.ACCOUNT_ACTION, actor, now, details=details)
    db.session.execute(
        update(HelpdeskRequest)
        .where(HelpdeskRequest.id == linked.id)
        .values(updated_at=now)
        .execution_options(synchronize_session=False)
    )


def open_request_for(user: User, now: datetime) -> SecondFactorReset | None:
    """The request for ``user`` still waiting for approval, if any."""
    return db.session.scalar(
        select(SecondFactorReset)
        .where(SecondFactorReset.user_id == user.id, _open(now))
        .order_by(SecondFactorReset.id.desc())
        .limit(1)
    )


def request_reset(
    actor: User, user: User, linked: HelpdeskRequest, *, now: datetime, today: date
) -> Result:
    """A Portal team member asks for ``user``'s factors to be reset, for ``linked`` (a helpdesk
    request that exists: the caller found it)."""
    if not _is_portal_team(actor, now, today):
        return Result(Outcome.NOT_PORTAL_TEAM)
    user = management.lock_row(user)
    refusal = None
    if user.id == actor.id:
        refusal = Outcome.OWN_FACTORS
    elif open_request_for(user, now) is not None:
        refusal = Outcome.ALREADY_OPEN
    if refusal is not None:
        record(
            kinds.SECOND_FACTOR_RESET_REFUSED,
            actor=actor,
            subject=user,
            now=now,
            reason=refusal,
            details=f"helpdesk request {linked.reference}",
        )
        db.session.flush()
        return Result(refusal)
    req = SecondFactorReset(
        user_id=user.id,
        requested_by_id=actor.id,
        helpdesk_reference=linked.reference,
        created_at=now,
        expires_at=now + LIFETIME,
    )
    db.session.add(req)
    db.session.flush()
    record(
        kinds.SECOND_FACTOR_RESET_REQUESTED,
        actor=actor,
        subject=user,
        now=now,
        details=f"reset request {req.id} for helpdesk request {linked.reference}",
    )
    _timeline(
        linked.reference,
        actor,
        f"Asked for a second-factor reset of {user.user_id} (waits for a second Portal team "
        "member's approval)",
        now,
    )
    db.session.flush()
    return Result(Outcome.REQUESTED, request=req)


def _lock_request(request_id: int) -> SecondFactorReset | None:
    if request_id > MAX_ID:
        return None
    return db.session.get(
        SecondFactorReset, request_id, with_for_update=True, populate_existing=True
    )


def _decide_refusal(
    actor: User, req: SecondFactorReset, *, now: datetime, approving: bool
) -> Outcome | None:
    status = status_of(req, now)
    if status in ("approved", "cancelled"):
        return Outcome.NOT_OPEN
    if status == "expired":
        return Outcome.EXPIRED
    if approving and req.requested_by_id == actor.id:
        return Outcome.OWN_REQUEST
    if approving and req.user_id == actor.id:
        return Outcome.OWN_FACTORS
    return None


def _refuse(
    actor: User, user: User, req: SecondFactorReset, outcome: Outcome, now: datetime
) -> Result:
    record(
        kinds.SECOND_FACTOR_RESET_REFUSED,
        actor=actor,
        subject=user,
        now=now,
        reason=outcome,
        details=f"reset request {req.id} for {req.helpdesk_reference}",
    )
    db.session.flush()
    return Result(outcome, request=req)


def approve(actor: User, request_id: int, *, now: datetime, today: date) -> Result | None:
    """A second Portal team member approves: the factors are reset.  None: no such request."""
    if not _is_portal_team(actor, now, today):
        return Result(Outcome.NOT_PORTAL_TEAM)
    req = _lock_request(request_id)
    if req is None:
        return None
    user = db.session.get(User, req.user_id)
    assert user is not None  # a foreign key
    refusal = _decide_refusal(actor, req, now=now, approving=True)
    if refusal is not None:
        return _refuse(actor, user, req, refusal, now)
    requester = db.session.get(User, req.requested_by_id)
    assert requester is not None  # a foreign key
    req.approved_by_id = actor.id
    req.approved_at = now
    db.session.flush()
    reference = req.helpdesk_reference
    record(
        kinds.SECOND_FACTOR_RESET_APPROVED,
        actor=actor,
        subject=user,
        now=now,
        details=f"reset request {req.id}, asked by {requester.user_id} for {reference}",
    )
    mail = reset_factors(
        actor,
        user,
        now=now,
        details=(
            f"two-person reset: asked by {requester.user_id}, approved by {actor.user_id}, "
            f"for helpdesk request {reference}"
        ),
    )
    _timeline(reference, actor, f"Approved the second-factor reset of {user.user_id}: done", now)
    db.session.flush()
    return Result(Outcome.DONE, request=req, mails=[mail])


def cancel(actor: User, request_id: int, *, now: datetime, today: date) -> Result | None:
    """The requester, or another Portal team member, cancels.  None: no such request."""
    if not _is_portal_team(actor, now, today):
        return Result(Outcome.NOT_PORTAL_TEAM)
    req = _lock_request(request_id)
    if req is None:
        return None
    user = db.session.get(User, req.user_id)
    assert user is not None  # a foreign key
    refusal = _decide_refusal(actor, req, now=now, approving=False)
    if refusal is not None:
        return _refuse(actor, user, req, refusal, now)
    req.cancelled_by_id = actor.id
    req.cancelled_at = now
    db.session.flush()
    record(
        kinds.SECOND_FACTOR_RESET_CANCELLED,
        actor=actor,
        subject=user,
        now=now,
        details=f"reset request {req.id} for {req.helpdesk_reference}",
    )
    _timeline(
        req.helpdesk_reference, actor, f"Cancelled the second-factor reset of {user.user_id}", now
    )
    db.session.flush()
    return Result(Outcome.CANCELLED, request=req)


# --- break-glass ---------------------------------------------------------------------------------


def break_glass(user: User, *, now: datetime, operator: str) -> mail_queue.QueuedMail:
    """``portal second-factor reset USER_ID``: on the server, no second person (audited with
    ``operator``, the operating-system account that ran the command)."""
    return reset_factors(
        None,
        user,
        now=now,
        details=f"break-glass command run by {operator!r} on the server",
        actor_label=f"operator {operator}"[:64],
    )


# --- reading, for the pages --------------------------------------------------------------------


@dataclass(frozen=True)
class RequestRow:
    request: SecondFactorReset
    user: User
    requested_by: User
    decided_by: User | None
    status: str

    @property
    def is_open(self) -> bool:
        return self.status == "pending"


def rows(where: ColumnElement[bool], *, now: datetime, limit: int = 100) -> list[RequestRow]:
    """Requests matching ``where``, newest first, with the people named."""
    found = db.session.scalars(
        select(SecondFactorReset).where(where).order_by(SecondFactorReset.id.desc()).limit(limit)
    ).all()
    out = []
    for req in found:
        user = db.session.get(User, req.user_id)
        requested_by = db.session.get(User, req.requested_by_id)
        decider = req.approved_by_id or req.cancelled_by_id
        decided_by = db.session.get(User, decider) if decider else None
        assert user is not None
        assert requested_by is not None
        out.append(RequestRow(req, user, requested_by, decided_by, status_of(req, now)))
    return out


def open_rows(now: datetime) -> list[RequestRow]:
    return rows(_open(now), now=now)


def recent_rows(now: datetime) -> list[RequestRow]:
    return rows(SecondFactorReset.id.isnot(None), now=now, limit=50)


def rows_for_user(user: User, now: datetime) -> list[RequestRow]:
    return rows(SecondFactorReset.user_id == user.id, now=now, limit=20)

"""Send User ID (docs/rules.md §5; docs/security.md EN-03…EN-05): on a Resend Admin User ID request,
email the User ID of the Administrator whose organisation and *stored* email match the request, to
that stored address only, at most PORTAL_HELPDESK_USER_ID_PER_DAY times per account in 24 hours.

Runs inside the caller's ``write_transaction``; the queued mails are returned for
``deliver_soon`` after the commit.  Every outcome is a timeline event.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from enum import StrEnum

from flask import current_app
from sqlalchemy import func
from sqlalchemy import select

from portal import emails
from portal import links
from portal.accounts import states
from portal.accounts.models import Organisation
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.accounts.models import normalise_key
from portal.accounts.rules import Access
from portal.audit import kinds
from portal.audit.models import AuditEvent
from portal.audit.record import record
from portal.extensions import db
from portal.helpdesk.actions import lock_request
from portal.helpdesk.models import EventKind
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import RequestKind
from portal.helpdesk.timeline import add_event
from portal.mail_queue import QueuedMail
from portal.mail_queue import enqueue

#: The window of the per-account cap.
CAP_WINDOW = timedelta(days=1)


class SendOutcome(StrEnum):
    SENT = "sent"
    NOT_MATCHED = "not_matched"
    CAPPED = "capped"
    WRONG_KIND = "wrong_kind"


@dataclass(frozen=True)
class SendResult:
    outcome: SendOutcome
    #: The User IDs emailed, or refused by the cap.
    user_ids: tuple[str, ...] = ()
    mails: list[QueuedMail] = field(default_factory=list)


def matching_administrators(req: HelpdeskRequest) -> list[User]:
    """Administrators whose organisation name and *stored* email match the request's
    (both case-insensitively, through the case-folded keys)."""
    return list(
        db.session.scalars(
            select(User)
            .join(Organisation, User.organisation_id == Organisation.id)
            .where(
                User.profile == Profile.ADMINISTRATOR.value,
                User.email_key == req.email_key,
                Organisation.name_key == normalise_key(req.organisation_name),
            )
            .order_by(User.id)
        )
    )


def sent_today(user: User, now: datetime) -> int:
    """How many times this account's User ID was emailed by staff in the last CAP_WINDOW."""
    return (
        db.session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(
                AuditEvent.subject_id == user.id,
                AuditEvent.kind == kinds.HELPDESK_USER_ID_SENT,
                AuditEvent.occurred_at > now - CAP_WINDOW,
            )
        )
        or 0
    )


def send_user_id(pk: int, *, actor: User, now: datetime) -> SendResult:
    """Email each matching Administrator its User ID, at its stored address only.

    Nothing is sent when no Administrator matches (a ``user_id_not_matched`` event), or when an
    account reached PORTAL_HELPDESK_USER_ID_PER_DAY in the last 24 hours (the event says so).
    Only Administrators are ever matched; access-removed accounts are matched but get no mail.
    """
    req = lock_request(pk)
    if req.kind != RequestKind.RESEND_USER_ID.value:
        return SendResult(SendOutcome.WRONG_KIND)
    admins = matching_administrators(req)
    if not admins:
        add_event(
            req,
            EventKind.USER_ID_NOT_MATCHED,
            actor,
            now,
            details=(
                "No Administrator of an organisation named "
                f"{req.organisation_name!r} has the stored email {req.email!r}. Nothing sent."
            ),
        )
        req.updated_at = now
        return SendResult(SendOutcome.NOT_MATCHED)
    cap = int(current_app.config["PORTAL_HELPDESK_USER_ID_PER_DAY"])
    # Lock (and re-read) the accounts: concurrent sends are counted one after the other.
    locked: list[User] = []
    for admin in admins:
        row = db.session.get(User, admin.id, with_for_update=True, populate_existing=True)
        if row is not None:  # users are never deleted
            locked.append(row)
    admins = locked
    eligible = [a for a in admins if states.state_of(a) is not Access.REMOVED]
    allowed = [a for a in eligible if sent_today(a, now) < cap]
    if not allowed:
        refused = tuple(a.user_id for a in admins)
        why = (
            f"the daily limit ({cap} per account in 24 hours) was reached"
            if eligible
            else "its access was removed by an Administrator"
        )
        add_event(
            req,
            EventKind.USER_ID_NOT_MATCHED,
            actor,
            now,
            details=f"Matched {', '.join(refused)}, but nothing was sent: {why}.",
        )
        req.updated_at = now
        return SendResult(SendOutcome.CAPPED if eligible else SendOutcome.NOT_MATCHED, refused)
    mails: list[QueuedMail] = []
    for admin in allowed:
        mails.append(
            enqueue(
                admin.email,  # the stored address, never the one typed in the request
                f"Your {emails.APP_NAME} Administrator User ID",
                _user_id_text(admin, req),
                purpose="helpdesk.user_id",
                ref=req.reference,
            )
        )
        record(
            kinds.HELPDESK_USER_ID_SENT,
            actor=actor,
            subject=admin,
            now=now,
            details=f"helpdesk request {req.reference}",
        )
        add_event(
            req,
            EventKind.USER_ID_SENT,
            actor,
            now,
            details=f"User ID {admin.user_id} emailed to its stored address {admin.email}.",
        )
    req.updated_at = now
    return SendResult(SendOutcome.SENT, tuple(a.user_id for a in allowed), mails)


def _user_id_text(admin: User, req: HelpdeskRequest) -> str:
    return emails.render(
        "helpdesk_user_id.txt",
        full_name=admin.full_name,
        reference=req.reference,
        user_id=admin.user_id,
        login_link=links.absolute_url("/console/login"),
    )

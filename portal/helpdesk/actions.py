"""What staff do to a request: set its status, add a note, refer it to the Portal team, reply
with a guide link, send an Administrator its User ID.

Each function runs inside the caller's ``write_transaction`` (it adds rows, never commits),
takes the acting staff user and ``now``, and adds one timeline event per thing that happened.
Emails are queued with :func:`portal.mail_queue.enqueue` and returned, so the caller can hand
them to ``deliver_soon`` after the commit.  No function here changes an account: Helpdesk
staff cannot enable anyone (SPEC §1).
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

from portal.accounts.models import Organisation
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.accounts.models import normalise_key
from portal.audit.models import AuditEvent
from portal.audit.record import record
from portal.extensions import db
from portal.guides import codes
from portal.helpdesk.models import STATUS_LABELS
from portal.helpdesk.models import EventKind
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import RequestEvent
from portal.helpdesk.models import RequestKind
from portal.helpdesk.models import Status
from portal.mail_queue import QueuedMail
from portal.mail_queue import enqueue

APP_NAME = "Claims Portal Console"
NOTE_MAX = 5000
#: Audit event kind for a User ID emailed by staff (counted for the daily cap).
USER_ID_SENT_AUDIT = "helpdesk_user_id_sent"
#: The window of the per-account cap on Send User ID.
CAP_WINDOW = timedelta(days=1)
GUIDES_INDEX = "index"


class NotFound(LookupError):
    """No request with that id."""


def _lock(pk: int) -> HelpdeskRequest:
    """The request, locked for this transaction (PostgreSQL; SQLite's BEGIN IMMEDIATE)."""
    req = db.session.get(HelpdeskRequest, pk, with_for_update=True, populate_existing=True)
    if req is None:
        raise NotFound(pk)
    return req


def _event(
    req: HelpdeskRequest,
    kind: EventKind,
    actor: User | None,
    now: datetime,
    *,
    details: str | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
) -> RequestEvent:
    ev = RequestEvent(
        request_id=req.id,
        occurred_at=now,
        kind=kind.value,
        actor_id=actor.id if actor is not None else None,
        actor=actor.user_id if actor is not None else "system",
        from_status=from_status,
        to_status=to_status,
        details=details,
    )
    db.session.add(ev)
    return ev


# --- status, notes, referral -----------------------------------------------------------------


def set_status(pk: int, status: Status, *, actor: User, now: datetime) -> bool:
    """Set (never flip) the status; True when it changed (a ``status_changed`` event)."""
    req = _lock(pk)
    if req.status == status.value:
        return False
    _event(
        req,
        EventKind.STATUS_CHANGED,
        actor,
        now,
        from_status=req.status,
        to_status=status.value,
    )
    req.status = status.value
    req.updated_at = now
    return True


def add_note(pk: int, text: str, *, actor: User, now: datetime) -> RequestEvent:
    """An internal note (never shown to the requester)."""
    text = text.strip()
    if not text or len(text) > NOTE_MAX:
        raise ValueError(f"a note has 1 to {NOTE_MAX} characters")
    req = _lock(pk)
    req.updated_at = now
    return _event(req, EventKind.NOTE, actor, now, details=text)


def refer(pk: int, *, actor: User, now: datetime, note: str = "") -> bool:
    """Refer to the Portal team in one step: status → referred and a ``referred`` event.

    False when the request was already referred (nothing changes).
    """
    req = _lock(pk)
    if req.status == Status.REFERRED.value:
        return False
    _event(
        req,
        EventKind.REFERRED,
        actor,
        now,
        from_status=req.status,
        to_status=Status.REFERRED.value,
        details=note.strip()[:NOTE_MAX] or None,
    )
    req.status = Status.REFERRED.value
    req.updated_at = now
    return True


# --- reply with a guide link -----------------------------------------------------------------


@dataclass(frozen=True)
class GuideSection:
    key: str  # "index" or a Troubleshooting Guide code
    label: str
    path: str


def guide_sections() -> list[GuideSection]:
    """What staff may link to: the guides index and each Troubleshooting Guide entry."""
    sections = [GuideSection(GUIDES_INDEX, "Guides (all guides)", "/guides/")]
    sections += [
        GuideSection(m.code, f"{m.code}: {m.text}", f"/guides/troubleshooting#{m.anchor}")
        for m in codes.MESSAGES
    ]
    return sections


def guide_section(key: str) -> GuideSection | None:
    return next((s for s in guide_sections() if s.key == key), None)


def public_link(path: str) -> str:
    """An absolute link built from PORTAL_BASE_URL, never from the request's Host header."""
    return str(current_app.config["PORTAL_BASE_URL"]).rstrip("/") + path


def reply_with_guide(pk: int, key: str, *, actor: User, now: datetime) -> QueuedMail:
    """Email the requester a link to a guide section; a ``guide_reply`` event."""
    section = guide_section(key)
    if section is None:
        raise ValueError("unknown guide section")
    req = _lock(pk)
    link = public_link(section.path)
    text = (
        f"Hello {req.name},\n\n"
        f"Thank you for contacting the {APP_NAME} Helpdesk (reference {req.reference}).\n\n"
        "The answer to your question is in our guide:\n\n"
        f"{section.label}\n{link}\n\n"
        "If it does not solve the problem, reply to the Helpdesk quoting your reference.\n"
    )
    row = enqueue(
        req.email,
        f"Your Helpdesk request {req.reference}: a guide that can help",
        text,
        purpose="helpdesk.guide_reply",
        ref=req.reference,
    )
    req.updated_at = now
    _event(req, EventKind.GUIDE_REPLY, actor, now, details=f"{section.label} – {link}")
    return row


# --- Send User ID ------------------------------------------------------------------------------


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
                AuditEvent.kind == USER_ID_SENT_AUDIT,
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
    req = _lock(pk)
    if req.kind != RequestKind.RESEND_USER_ID.value:
        return SendResult(SendOutcome.WRONG_KIND)
    admins = matching_administrators(req)
    if not admins:
        _event(
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
    for admin in admins:  # lock the accounts: concurrent sends count one after the other
        db.session.get(User, admin.id, with_for_update=True)
    eligible = [a for a in admins if a.active]
    allowed = [a for a in eligible if sent_today(a, now) < cap]
    if not allowed:
        refused = tuple(a.user_id for a in admins)
        why = (
            f"the daily limit ({cap} per account in 24 hours) was reached"
            if eligible
            else "its access was removed by an Administrator"
        )
        _event(
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
                f"Your {APP_NAME} Administrator User ID",
                _user_id_text(admin, req),
                purpose="helpdesk.user_id",
                ref=req.reference,
            )
        )
        record(
            USER_ID_SENT_AUDIT,
            actor=actor,
            subject=admin,
            now=now,
            details=f"helpdesk request {req.reference}",
        )
        _event(
            req,
            EventKind.USER_ID_SENT,
            actor,
            now,
            details=f"User ID {admin.user_id} emailed to its stored address {admin.email}.",
        )
    req.updated_at = now
    return SendResult(SendOutcome.SENT, tuple(a.user_id for a in allowed), mails)


def _user_id_text(admin: User, req: HelpdeskRequest) -> str:
    return (
        f"Hello {admin.full_name},\n\n"
        f"You asked the {APP_NAME} Helpdesk to resend your Administrator User ID "
        f"(reference {req.reference}).\n\n"
        f"Your User ID is: {admin.user_id}\n\n"
        f"Log in to the Admin Console at {public_link('/console/login')}\n\n"
        "If you did not ask for this, you can ignore this email: nothing has changed.\n"
    )


STATUS_DONE = "Status set to {label}."


def status_label(status: str) -> str:
    return STATUS_LABELS[Status(status)]

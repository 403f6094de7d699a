"""What staff do to a request: set its status, add a note, refer it to the Portal team, reply
with a guide link (Send User ID is in :mod:`portal.helpdesk.send_user_id`).

Each function runs inside the caller's ``write_transaction`` (it adds rows, never commits),
takes the acting staff user and ``now``, and adds one timeline event per thing that happened.
Emails are queued with :func:`portal.mail_queue.enqueue` and returned, so the caller can hand
them to ``deliver_soon`` after the commit.  No function here changes an account: Helpdesk
staff cannot enable anyone (docs/rules.md §1).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from portal import emails
from portal import links
from portal import messages
from portal.accounts.models import User
from portal.audit import kinds
from portal.audit.record import record
from portal.extensions import db
from portal.helpdesk import status_link
from portal.helpdesk.models import EventKind
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import RequestEvent
from portal.helpdesk.models import Status
from portal.helpdesk.timeline import add_event
from portal.mail_queue import QueuedMail
from portal.mail_queue import enqueue

NOTE_MAX = 5000
GUIDES_INDEX = "index"


class NotFound(LookupError):
    """No request with that id."""


def lock_request(pk: int) -> HelpdeskRequest:
    """The request, locked for this transaction (PostgreSQL; SQLite's BEGIN IMMEDIATE)."""
    req = db.session.get(HelpdeskRequest, pk, with_for_update=True, populate_existing=True)
    if req is None:
        raise NotFound(pk)
    return req


# --- status, notes, referral -----------------------------------------------------------------


def _audit_status(req: HelpdeskRequest, to_status: str, actor: User, now: datetime) -> None:
    record(
        kinds.HELPDESK_STATUS_CHANGED,
        actor=actor,
        subject=None,
        now=now,
        reason=to_status,
        details=f"{req.reference}: {req.status} -> {to_status}",
    )


def set_status(
    pk: int,
    status: Status,
    *,
    actor: User,
    now: datetime,
    tell: bool = True,
    mails: list[QueuedMail] | None = None,
) -> bool:
    """Set (never flip) the status; True when it changed (a ``status_changed`` event).

    Resolving tells the requester (docs/rules.md §5, "the loop closes"): unless ``tell`` is
    False (a reply that says so itself), the resolution notice is queued and appended to
    ``mails`` for the caller's ``deliver_soon`` (the scheduler retries it otherwise).
    """
    req = lock_request(pk)
    if req.status == status.value:
        return False
    _audit_status(req, status.value, actor, now)
    add_event(
        req,
        EventKind.STATUS_CHANGED,
        actor,
        now,
        from_status=req.status,
        to_status=status.value,
    )
    req.status = status.value
    req.updated_at = now
    if status == Status.RESOLVED:
        status_link.mark_resolved(req, now)
        if tell:
            notice = status_link.tell_resolved(req, now)
            if mails is not None:
                mails.append(notice)
    else:
        status_link.mark_reopened(req)
    return True


def add_note(pk: int, text: str, *, actor: User, now: datetime) -> RequestEvent:
    """An internal note (never shown to the requester)."""
    text = text.strip()
    if not text or len(text) > NOTE_MAX:
        raise ValueError(f"a note has 1 to {NOTE_MAX} characters")
    req = lock_request(pk)
    req.updated_at = now
    return add_event(req, EventKind.NOTE, actor, now, details=text)


def refer(pk: int, *, actor: User, now: datetime, note: str = "") -> bool:
    """Refer to the Portal team in one step: status → referred and a ``referred`` event.

    False when the request was already referred (nothing changes).
    """
    req = lock_request(pk)
    if req.status == Status.REFERRED.value:
        return False
    _audit_status(req, Status.REFERRED.value, actor, now)
    add_event(
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
        for m in messages.MESSAGES
    ]
    return sections


def guide_section(key: str) -> GuideSection | None:
    return next((s for s in guide_sections() if s.key == key), None)


def reply_with_guide(pk: int, key: str, *, actor: User, now: datetime) -> QueuedMail:
    """Email the requester a link to a guide section; a ``guide_reply`` event."""
    section = guide_section(key)
    if section is None:
        raise ValueError("unknown guide section")
    req = lock_request(pk)
    link = links.absolute_url(section.path)
    # "Hello," and never what was typed: the address is unverified (as the acknowledgement).
    text = emails.render(
        "helpdesk_guide_reply.txt", reference=req.reference, label=section.label, link=link
    )
    row = enqueue(
        req.email,
        f"Your Helpdesk request {req.reference}: a guide that can help",
        text,
        purpose="helpdesk.guide_reply",
        ref=req.reference,
    )
    req.updated_at = now
    add_event(req, EventKind.GUIDE_REPLY, actor, now, details=f"{section.label} – {link}")
    return row

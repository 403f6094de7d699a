"""Storing what the public Helpdesk forms send (docs/rules.md §5): the only writer of new requests.

Like the account service, these functions add rows and flush; the caller commits (in one
``write_transaction``) and then hands the queued acknowledgement to
:func:`portal.mail_queue.deliver_soon`.  So a request, its screenshot, its first timeline
events and its acknowledgement email exist together or not at all, and the email is tried only
after the commit: an SMTP failure leaves it pending in ``mail_queue`` (retried by the jobs),
never undoes the request.

The acknowledgement repeats nothing the sender typed (only the reference, the request's status
link and fixed text): the address is unverified, so a form that echoed the name or the details
into an email would let anyone send their own text to anyone through us.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from portal import emails
from portal import links
from portal import mail_queue
from portal.extensions import db
from portal.helpdesk import status_link
from portal.helpdesk import timeline
from portal.helpdesk.models import EventKind
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import RequestKind
from portal.helpdesk.models import Screenshot
from portal.helpdesk.models import Status
from portal.helpdesk.models import reference
from portal.helpdesk.screenshots import CleanImage
from portal.helpdesk.upload_quota import check_before_storing
from portal.keys import normalise_key

if TYPE_CHECKING:
    from portal.accounts.models import User

ACK_PURPOSE = "helpdesk.ack"


@dataclass(frozen=True)
class Sender:
    """Who sent a form: what they typed about themselves, and their account when logged in."""

    name: str
    email: str
    organisation: str
    user: User | None = None


@dataclass(frozen=True)
class ContactDetails:
    environment: str
    stated_role: str
    console: str
    user_id: str | None
    error_message: str | None
    details: str | None


def _new_request(
    kind: RequestKind, sender: Sender, environment: str, now: datetime
) -> HelpdeskRequest:
    return HelpdeskRequest(
        kind=kind.value,
        status=Status.NEW.value,
        created_at=now,
        updated_at=now,
        environment=environment,
        name=sender.name,
        email=sender.email,
        email_key=normalise_key(sender.email),
        organisation_name=sender.organisation,
        submitted_by_id=sender.user.id if sender.user is not None else None,
        has_screenshot=False,
        status_salt=status_link.new_salt(),
    )


def _created(request: HelpdeskRequest, sender: Sender, now: datetime) -> None:
    """The first line of the timeline: the sender (their User ID when logged in) sent it."""
    actor = sender.user.user_id if sender.user is not None else sender.name
    timeline.add_event(
        request, EventKind.CREATED, None, now, actor_name=actor, to_status=Status.NEW.value
    )


def acknowledgement_text(request: HelpdeskRequest) -> tuple[str, str]:
    """The acknowledgement's subject and body (fixed text, the reference and the status link)."""
    subject = f"Your Helpdesk request {request.reference}"
    body = emails.render(
        "helpdesk_acknowledgement.txt",
        reference=request.reference,
        guide_url=links.absolute_url("/guides/troubleshooting"),
        status_link=status_link.link(request),
    )
    return subject, body


def _acknowledge(request: HelpdeskRequest, now: datetime) -> mail_queue.QueuedMail:
    subject, body = acknowledgement_text(request)
    ack = mail_queue.enqueue(
        request.email, subject, body, purpose=ACK_PURPOSE, ref=request.reference
    )
    timeline.add_event(
        request, EventKind.MAIL_QUEUED, None, now, details=f"Acknowledgement to {request.email}"
    )
    return ack


def submit_contact(
    sender: Sender,
    details: ContactDetails,
    screenshot: CleanImage | None,
    *,
    suggestions_shown: list[str],
    now: datetime,
) -> tuple[HelpdeskRequest, mail_queue.QueuedMail]:
    """Store a Contact Us request, its screenshot, its timeline and its acknowledgement.

    Returns the request and the queued acknowledgement (to pass to ``deliver_soon`` after the
    caller's commit).  Raises :class:`portal.helpdesk.upload_quota.UploadQuotaReached` when the
    screenshot would pass a service-wide quota (nothing is then stored).
    """
    if not details.error_message and screenshot is None:
        raise ValueError("a Contact Us request states the error message or has a screenshot")
    if screenshot is not None:
        check_before_storing(now, len(screenshot.data))
    request = _new_request(RequestKind.CONTACT, sender, details.environment, now)
    request.stated_role = details.stated_role
    request.console = details.console
    request.user_id_given = details.user_id or None
    request.user_id_key = normalise_key(details.user_id) if details.user_id else None
    request.error_message = details.error_message or None
    request.details = details.details or None
    request.suggestions_shown = " ".join(suggestions_shown)[:500] or None
    request.has_screenshot = screenshot is not None
    db.session.add(request)
    db.session.flush()  # the id makes the reference
    ref = reference(request.id)
    if screenshot is not None:
        db.session.add(
            Screenshot(
                request_id=request.id,
                content_type=screenshot.content_type,
                filename=f"{ref}-screenshot{screenshot.extension}",
                width=screenshot.width,
                height=screenshot.height,
                data=screenshot.data,
            )
        )
    _created(request, sender, now)
    ack = _acknowledge(request, now)
    db.session.flush()
    return request, ack


def submit_resend_user_id(
    sender: Sender, *, environment: str, now: datetime
) -> tuple[HelpdeskRequest, mail_queue.QueuedMail]:
    """Store a Resend Admin User ID request for the queue, and its acknowledgement.

    Nothing is looked up here: whether an Administrator matches is for the staff, from the
    queue (so the answer, its timing and the acknowledgement cannot depend on it).  The
    acknowledgement (to the typed address, like Contact Us's) carries the reference and the
    status link, never a User ID: that goes only to the registered address, from the queue.
    """
    request = _new_request(RequestKind.RESEND_USER_ID, sender, environment, now)
    db.session.add(request)
    db.session.flush()
    _created(request, sender, now)
    ack = _acknowledge(request, now)
    db.session.flush()
    return request, ack

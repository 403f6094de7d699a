"""Newsletter sign-up, confirmation and unsubscribe (double opt-in).

* :func:`sign_up` never tells the caller whether the address was known: the page gives one
  answer, and what happens is said only in the email sent to the address itself (a link to
  confirm, or "you are already subscribed" with an unsubscribe link).  One address gets at most
  one such email per :data:`RESEND_AFTER`, whoever asks.
* The confirmation token is random, single-use and expiring; only its SHA-256 is stored.
* The unsubscribe link is signed (``itsdangerous``, the app's secret key), not stored: every
  newsletter email ever sent keeps a working link, and it needs no login.
* Emails go through :mod:`portal.mail_queue` (stored with the change, sent after the commit).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from enum import StrEnum

from flask import current_app
from itsdangerous import BadSignature
from itsdangerous import URLSafeSerializer
from sqlalchemy import select

from portal import emails
from portal import links
from portal import mail_queue
from portal.extensions import db
from portal.keys import normalise_key
from portal.link_tokens import hash_token as hash_token  # re-exported: callers use service.*
from portal.link_tokens import new_token
from portal.mail_queue import QueuedMail
from portal.newsletter.models import CONFIRMED
from portal.newsletter.models import PENDING
from portal.newsletter.models import UNSUBSCRIBED
from portal.newsletter.models import Subscriber

#: One sign-up email per address per this long, however often the form is sent.
RESEND_AFTER = timedelta(minutes=10)
MAX_TOKEN_LENGTH = 200
UNSUBSCRIBE_SALT = "newsletter-unsubscribe"


def email_key(email: str) -> str:
    return normalise_key(email)


def _address_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def make_unsubscribe_token(secret_key: str, pk: int, key: str) -> str:
    """Signed (id, digest of the address) with ``secret_key``."""
    serializer = URLSafeSerializer(secret_key, salt=UNSUBSCRIBE_SALT)
    return str(serializer.dumps([pk, _address_digest(key)]))


def unsubscribe_token(subscriber: Subscriber) -> str:
    """Valid for this address for as long as the row exists (every email keeps a working link)."""
    return make_unsubscribe_token(
        current_app.config["SECRET_KEY"], subscriber.id, subscriber.email_key
    )


def confirm_link(token: str) -> str:
    return links.absolute_url(f"/newsletter/confirm/{token}")


def unsubscribe_link(subscriber: Subscriber) -> str:
    return links.absolute_url(f"/newsletter/unsubscribe/{unsubscribe_token(subscriber)}")


def _subject(text: str) -> str:
    training = current_app.config.get("PORTAL_ENVIRONMENT") == "training"
    return f"[Training] {text}" if training else text


def _confirmation_email(subscriber: Subscriber, token: str, hours: int) -> tuple[str, str]:
    body = emails.render(
        "newsletter_confirm.txt",
        confirm_link=confirm_link(token),
        hours=hours,
        unsubscribe_link=unsubscribe_link(subscriber),
    )
    return _subject("Confirm your newsletter subscription"), body


def _already_email(subscriber: Subscriber) -> tuple[str, str]:
    body = emails.render("newsletter_already.txt", unsubscribe_link=unsubscribe_link(subscriber))
    return _subject("You are already subscribed to the newsletter"), body


def _welcome_email(subscriber: Subscriber) -> tuple[str, str]:
    body = emails.render("newsletter_welcome.txt", unsubscribe_link=unsubscribe_link(subscriber))
    return _subject("Your newsletter subscription is confirmed"), body


def _awaiting_confirmation(subscriber: Subscriber, now: datetime) -> bool:
    """A pending sign-up whose confirmation link still works.

    Its stored address is kept, whatever case-folded variant is typed next ("ADA@…" for
    "ada@…", "straße@…" for "strasse@…": one key, possibly two mailboxes): the new link goes
    to the address that asked first, so a variant can neither take over nor cancel that
    sign-up.  Once the link has expired (or after an unsubscribe) the address typed now is
    stored, and only its own mailbox can confirm it.
    """
    return (
        subscriber.status == PENDING
        and subscriber.confirm_expires_at is not None
        and now < subscriber.confirm_expires_at
    )


def sign_up(email: str, *, now: datetime) -> QueuedMail | None:
    """Record the request and queue the right email (call inside ``write_transaction``).

    Returns the queued email (for :func:`portal.mail_queue.deliver_soon` after the commit), or
    None when this address was emailed less than :data:`RESEND_AFTER` ago.
    """
    session = db.session
    key = email_key(email)
    subscriber = session.scalar(select(Subscriber).where(Subscriber.email_key == key))
    if subscriber is None:
        subscriber = Subscriber(email=email.strip(), email_key=key, status=PENDING, created_at=now)
        session.add(subscriber)
        session.flush()  # its id goes into the unsubscribe link
    elif subscriber.last_emailed_at is not None and now - subscriber.last_emailed_at < RESEND_AFTER:
        return None
    subscriber.last_emailed_at = now
    if subscriber.status == CONFIRMED:
        subject, body = _already_email(subscriber)
        purpose = "newsletter.already"
    else:
        hours = int(current_app.config["PORTAL_NEWSLETTER_CONFIRM_HOURS"])
        token = new_token()
        if not _awaiting_confirmation(subscriber, now):
            subscriber.email = email.strip()
        subscriber.status = PENDING
        subscriber.confirm_token_hash = hash_token(token)
        subscriber.confirm_expires_at = now + timedelta(hours=hours)
        subject, body = _confirmation_email(subscriber, token, hours)
        # The link is a secret until it expires: sealed at rest, wiped once sent or expired.
        return mail_queue.enqueue(
            subscriber.email,
            subject,
            body,
            purpose="newsletter.confirm",
            secret_until=subscriber.confirm_expires_at,
        )
    return mail_queue.enqueue(subscriber.email, subject, body, purpose=purpose)


class Outcome(StrEnum):
    CONFIRMED = "confirmed"
    ALREADY = "already"  # this address was already confirmed (e.g. the link opened twice)
    INVALID = "invalid"  # unknown, used or expired


@dataclass(frozen=True)
class Confirmation:
    outcome: Outcome
    mail: QueuedMail | None = None


def pending_for(token: str, *, now: datetime) -> Subscriber | None:
    """The subscriber whose unused, unexpired confirmation token this is."""
    if not 0 < len(token) <= MAX_TOKEN_LENGTH:
        return None
    session = db.session
    found = session.scalar(
        select(Subscriber).where(Subscriber.confirm_token_hash == hash_token(token))
    )
    if found is None or found.confirm_expires_at is None or now >= found.confirm_expires_at:
        return None
    return found


def confirm(token: str, *, now: datetime) -> Confirmation:
    """Use a confirmation token (call inside ``write_transaction``): once only."""
    subscriber = pending_for(token, now=now)
    if subscriber is None:
        return Confirmation(Outcome.INVALID)
    subscriber.confirm_token_hash = None
    subscriber.confirm_expires_at = None
    if subscriber.status == CONFIRMED:
        return Confirmation(Outcome.ALREADY)
    subscriber.status = CONFIRMED
    subscriber.confirmed_at = now
    subscriber.unsubscribed_at = None
    subject, body = _welcome_email(subscriber)
    queued = mail_queue.enqueue(subscriber.email, subject, body, purpose="newsletter.welcome")
    return Confirmation(Outcome.CONFIRMED, queued)


def subscriber_for_unsubscribe(token: str) -> Subscriber | None:
    """The subscriber a signed unsubscribe token names (None when forged or stale)."""
    if not 0 < len(token) <= MAX_TOKEN_LENGTH:
        return None
    try:
        serializer = URLSafeSerializer(current_app.config["SECRET_KEY"], salt=UNSUBSCRIBE_SALT)
        pk, digest = serializer.loads(token)
    except (BadSignature, ValueError, TypeError):
        return None
    session = db.session
    found = session.get(Subscriber, pk) if isinstance(pk, int) else None
    if found is None or _address_digest(found.email_key) != digest:
        return None
    return found


def unsubscribe(subscriber: Subscriber, *, now: datetime) -> None:
    """No more newsletters, and any pending confirmation link stops working."""
    if subscriber.status != UNSUBSCRIBED:
        subscriber.status = UNSUBSCRIBED
        subscriber.unsubscribed_at = now
    subscriber.confirm_token_hash = None
    subscriber.confirm_expires_at = None


#: A cell starting with one of these is read as a formula by spreadsheets (OWASP CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def confirmed_csv() -> Iterator[str]:
    """The confirmed subscribers as CSV (email, confirmed at, UTC ISO 8601), oldest first."""
    session = db.session
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["email", "confirmed_at_utc"])
    yield buffer.getvalue()
    rows = session.execute(
        select(Subscriber.email, Subscriber.confirmed_at)
        .where(Subscriber.status == CONFIRMED)
        .order_by(Subscriber.confirmed_at, Subscriber.id)
        .execution_options(yield_per=500)
    )
    for email, confirmed_at in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([_cell(email), confirmed_at.isoformat() if confirmed_at else ""])
        yield buffer.getvalue()

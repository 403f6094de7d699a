"""Mail that must not be lost: stored with the action that causes it, sent after the commit.

:func:`enqueue` adds a :class:`QueuedMail` row to the caller's transaction, so the message
exists exactly when the action does (a helpdesk request and its acknowledgement, a lockout and
its notice).  After the commit, :func:`deliver_soon` hands the new rows to a background thread
(the request never waits for SMTP); :func:`deliver` tries one row and records the outcome.
A failed message stays ``pending`` with its error and attempt count; the nightly jobs call
:func:`retry_pending` until it goes or reaches :data:`MAX_ATTEMPTS` (then ``failed``).

Bodies of reset links are never queued: those are sent directly and never stored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from datetime import timedelta

from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from portal import background
from portal import clock
from portal import mail
from portal.db import UTCDateTime
from portal.db import write_transaction
from portal.extensions import db

log = logging.getLogger(__name__)

PENDING = "pending"
SENT = "sent"
FAILED = "failed"
STATUSES = (PENDING, SENT, FAILED)
#: After this many failed attempts a message is marked failed and no longer retried.
MAX_ATTEMPTS = 10
#: A message is not retried sooner than this after its last attempt.
RETRY_AFTER = timedelta(minutes=5)


class QueuedMail(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "mail_queue"
    __table_args__ = (Index("ix_mail_queue_status_created_at", "status", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: What the message is for ("helpdesk.ack", "lockout.notice", …): for logs and screens.
    purpose: Mapped[str] = mapped_column(String(40))
    #: What it is about, e.g. a helpdesk reference ("HD-000123"); free text, optional.
    ref: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


def enqueue(
    to: str, subject: str, text: str, *, purpose: str, ref: str | None = None
) -> QueuedMail:
    """Add a message to the current transaction (refuses CR/LF in ``to``/``subject``)."""
    mail.build(to, subject, text)  # ValueError on header injection, before anything is stored
    row = QueuedMail(
        created_at=clock.now(),
        purpose=purpose,
        ref=ref,
        to_address=to,
        subject=subject,
        body=text,
        status=PENDING,
        attempts=0,
    )
    db.session.add(row)
    return row


def deliver(mail_id: int) -> bool:
    """Try to send one pending message now; record the outcome.  True when it went.

    The row is claimed first (attempts + 1 where still pending and unchanged), so two
    processes never send the same message twice at the same time.
    """
    session = db.session
    session.rollback()
    row = session.get(QueuedMail, mail_id)
    if row is None or row.status != PENDING:
        return False
    now = clock.now()
    with write_transaction(session):
        claimed = session.execute(
            update(QueuedMail)
            .where(
                QueuedMail.id == mail_id,
                QueuedMail.status == PENDING,
                QueuedMail.attempts == row.attempts,
            )
            .values(attempts=QueuedMail.attempts + 1, last_attempt_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
    if not claimed:
        return False
    try:
        mail.send(row.to_address, row.subject, row.body)
    except (mail.MailError, ValueError) as exc:
        error = str(exc)[:500]
        log.warning("queued mail %s (%s) not sent: %s", mail_id, row.purpose, error)
        with write_transaction(session):
            session.execute(
                update(QueuedMail)
                .where(QueuedMail.id == mail_id)
                .values(
                    last_error=error,
                    status=FAILED if row.attempts + 1 >= MAX_ATTEMPTS else PENDING,
                )
                .execution_options(synchronize_session=False)
            )
        session.expire_all()
        return False
    with write_transaction(session):
        session.execute(
            update(QueuedMail)
            .where(QueuedMail.id == mail_id)
            .values(status=SENT, sent_at=clock.now(), last_error=None)
            .execution_options(synchronize_session=False)
        )
    session.expire_all()
    return True


def _deliver_all(ids: list[int]) -> None:
    for mail_id in ids:
        deliver(mail_id)
    db.session.remove()


def deliver_soon(rows: Iterable[QueuedMail]) -> None:
    """After the commit: send these messages from a background thread."""
    ids = [row.id for row in rows]
    if ids:
        background.submit(_deliver_all, ids)


def retry_pending(*, limit: int = 1000) -> dict[str, int]:
    """Try again every pending message whose last attempt is old enough (nightly job)."""
    cutoff = clock.now() - RETRY_AFTER
    ids = db.session.scalars(
        select(QueuedMail.id)
        .where(
            QueuedMail.status == PENDING,
            (QueuedMail.last_attempt_at.is_(None)) | (QueuedMail.last_attempt_at <= cutoff),
        )
        .order_by(QueuedMail.id)
        .limit(limit)
    ).all()
    sent = sum(1 for mail_id in ids if deliver(mail_id))
    return {"tried": len(ids), "sent": sent, "still_pending": len(ids) - sent}

"""Every email goes through here: stored with the action that causes it, sent after the commit,
retried until it goes, never lost when SMTP is down.

:func:`enqueue` adds a :class:`QueuedMail` row to the caller's transaction, so the message
exists exactly when the action does (a helpdesk request and its acknowledgement, a lockout and
its notice, a reset token and its link).  After the commit, :func:`deliver_soon` hands the new
rows to a background thread (the request never waits for SMTP); :func:`deliver` tries one row.

**At least once.**  A row is marked ``sent`` only after the SMTP server accepted it.  Before
sending, a process *claims* the row with one conditional ``UPDATE`` (pending, due, and not
claimed by a live lease): it bumps ``attempts`` and sets ``claimed_until``.  Exactly one of
several concurrent senders (threads, workers, schedulers on other hosts) gets the row; a sender
that dies mid-send leaves a lease that runs out, and the row is tried again.  So a duplicate
happens only when the server accepted a message and the answer (or our ``sent`` mark) was lost.

**Retries.**  A failed attempt leaves the row ``pending`` with its error and a
``next_attempt_at`` further away each time (:data:`BACKOFF`); the scheduler calls
:func:`run_due` every ``PORTAL_MAIL_RETRY_MINUTES``.  A message still failing
``PORTAL_MAIL_RETRY_HOURS`` after it was queued is marked ``failed``, logged as an error and
listed for the Portal team (``/operator/mail``, ``portal mail list``).

**Secrets.**  A message that carries a secret (``secret_until=`` the moment the secret stops
working) is stored sealed (``portal.mail_secrets``: Fernet under a key derived from the secret
key), and its body is wiped once it was sent, once it failed, or once ``secret_until`` passed
unsent (then the row is ``expired``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from datetime import timedelta
from typing import Any

from flask import Flask
from flask import current_app
from sqlalchemy import Boolean
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from portal import background
from portal import clock
from portal import mail
from portal import mail_secrets
from portal.db import UTCDateTime
from portal.db import write_transaction
from portal.extensions import db

log = logging.getLogger(__name__)

PENDING = "pending"
SENT = "sent"
FAILED = "failed"  # retried for PORTAL_MAIL_RETRY_HOURS without success
EXPIRED = "expired"  # its secret stopped working before it could be sent; body wiped
STATUSES = (PENDING, SENT, FAILED, EXPIRED)
#: Statuses of mail that never reached anyone (shown to the Portal team).
UNDELIVERED = (FAILED, EXPIRED)
#: The wait after the n-th failed attempt (then the last one, again and again).
BACKOFF = tuple(timedelta(minutes=m) for m in (1, 2, 5, 10, 20, 30))
#: A claim lasts at least this long (more when PORTAL_MAIL_TIMEOUT is long); a sender that
#: died holding it delays its message by this much, never more.
MIN_LEASE = timedelta(minutes=2)
#: How many rows one :func:`retry_pending` call tries at most.
BATCH = 1000


class QueuedMail(db.Model):  # type: ignore[name-defined]
    __tablename__ = "mail_queue"
    __table_args__ = (
        Index("ix_mail_queue_status_created_at", "status", "created_at"),
        Index("ix_mail_queue_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: What the message is for ("helpdesk.ack", "lockout.notice", …): for logs and screens.
    purpose: Mapped[str] = mapped_column(String(40))
    #: What it is about, e.g. a helpdesk reference ("HD-000123"); free text, optional.
    ref: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    #: The text, or (``sealed``) its Fernet ciphertext; empty once a sealed body is wiped.
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: Not tried before this moment (backoff after a failure; the queuing time at first).
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: A sender holds the row until then (None: nobody); see :func:`deliver`.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: The body is encrypted (the message carries a secret).
    sealed: Mapped[bool] = mapped_column(Boolean, default=False)
    #: When the secret in a sealed body stops working: unsent by then, the row is wiped.
    wipe_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    @property
    def wiped(self) -> bool:
        return self.sealed and not self.body


def enqueue(
    to: str,
    subject: str,
    text: str,
    *,
    purpose: str,
    ref: str | None = None,
    secret_until: datetime | None = None,
) -> QueuedMail:
    """Add a message to the current transaction (refuses CR/LF in ``to``/``subject``).

    ``secret_until``: the message carries a secret that works until then (a reset link): its
    body is stored encrypted and wiped once sent, failed, or unsent at that moment.
    """
    mail.build(to, subject, text)  # ValueError on header injection, before anything is stored
    now = clock.now()
    sealed = secret_until is not None
    row = QueuedMail(
        created_at=now,
        purpose=purpose,
        ref=ref,
        to_address=to,
        subject=subject,
        body=mail_secrets.seal(text) if sealed else text,
        status=PENDING,
        attempts=0,
        next_attempt_at=now,
        sealed=sealed,
        wipe_at=secret_until,
    )
    db.session.add(row)
    return row


def backoff(attempts: int) -> timedelta:
    """The wait before the next try after ``attempts`` failed ones (1 or more)."""
    return BACKOFF[min(max(attempts, 1), len(BACKOFF)) - 1]


def give_up_after() -> timedelta:
    return timedelta(hours=int(current_app.config["PORTAL_MAIL_RETRY_HOURS"]))


def _lease() -> timedelta:
    # An SMTP exchange is a few blocking steps, each bounded by the timeout.
    return max(MIN_LEASE, timedelta(seconds=6 * float(current_app.config["PORTAL_MAIL_TIMEOUT"])))


def _due(now: datetime) -> Any:
    """Rows a sender may claim now: pending, due, not held by a live lease, secret unexpired."""
    return (
        (QueuedMail.status == PENDING)
        & (QueuedMail.next_attempt_at <= now)
        & or_(QueuedMail.claimed_until.is_(None), QueuedMail.claimed_until <= now)
        & or_(QueuedMail.wipe_at.is_(None), QueuedMail.wipe_at > now)
    )


def _set(mail_id: int, where: Any, **values: Any) -> int:
    """One conditional UPDATE of a row in a write transaction of its own; rows changed."""
    with write_transaction(db.session):
        result = db.session.execute(
            update(QueuedMail)
            .where(QueuedMail.id == mail_id, where)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def claim(mail_id: int, *, now: datetime) -> QueuedMail | None:
    """Take the row for one attempt (atomic: at most one concurrent caller gets it)."""
    db.session.rollback()
    claimed = _set(
        mail_id,
        _due(now),
        attempts=QueuedMail.attempts + 1,
        last_attempt_at=now,
        claimed_until=now + _lease(),
    )
    if not claimed:
        return None
    row = db.session.scalar(
        select(QueuedMail).where(QueuedMail.id == mail_id).execution_options(populate_existing=True)
    )
    db.session.rollback()  # no transaction stays open during the SMTP exchange
    return row


def deliver(mail_id: int) -> bool:
    """Try to send one due message now; record the outcome.  True when the server took it."""
    now = clock.now()
    row = claim(mail_id, now=now)
    if row is None:
        return False
    mine = (QueuedMail.status == PENDING) & (QueuedMail.attempts == row.attempts)
    try:
        text = mail_secrets.unseal(row.body) if row.sealed else row.body
        mail.send(row.to_address, row.subject, text)
    except mail_secrets.Unreadable as exc:
        _give_up(row, mine, f"{exc} (was SECRET_KEY changed without SECRET_KEY_FALLBACKS?)")
        return False
    except (mail.MailError, ValueError) as exc:
        _failed_attempt(row, mine, str(exc), now=clock.now())
        return False
    except Exception as exc:  # a bug of ours or of a library: counted like any failure
        log.exception("queued mail %s (%s): unexpected error while sending", row.id, row.purpose)
        _failed_attempt(row, mine, f"{exc.__class__.__name__}: {exc}", now=clock.now())
        return False
    wipe = {"body": ""} if row.sealed else {}
    # Whatever happened meanwhile (a lease that ran out), the server has it: it is sent.
    _set(
        mail_id,
        QueuedMail.status != SENT,
        status=SENT,
        sent_at=clock.now(),
        last_error=None,
        claimed_until=None,
        **wipe,
    )
    db.session.expire_all()
    return True


def _failed_attempt(row: QueuedMail, mine: Any, error: str, *, now: datetime) -> None:
    if now - row.created_at >= give_up_after():
        _give_up(row, mine, error)
        return
    log.warning("queued mail %s (%s) not sent, will retry: %s", row.id, row.purpose, error[:500])
    _set(
        row.id,
        mine,
        last_error=error[:500],
        claimed_until=None,
        next_attempt_at=now + backoff(row.attempts),
    )
    db.session.expire_all()


def _give_up(row: QueuedMail, mine: Any, error: str) -> None:
    """Mark the row failed (its sealed body wiped) and say so in the log, for the operator."""
    wipe = {"body": ""} if row.sealed else {}
    changed = _set(row.id, mine, status=FAILED, last_error=error[:500], claimed_until=None, **wipe)
    if changed:
        log.error(
            "queued mail %s (%s, ref %s) FAILED after %s attempt(s) since %s: %s",
            row.id,
            row.purpose,
            row.ref or "-",
            row.attempts,
            row.created_at.isoformat(timespec="seconds"),
            error[:500],
        )
    db.session.expire_all()


def _deliver_all(ids: list[int]) -> None:
    for mail_id in ids:
        deliver(mail_id)
    db.session.remove()


def deliver_soon(rows: Iterable[QueuedMail]) -> None:
    """After the commit: send these messages from a background thread."""
    ids = [row.id for row in rows]
    if ids:
        background.submit(_deliver_all, ids)


def wipe_expired(*, now: datetime) -> int:
    """Wipe (and mark ``expired``) the sealed messages whose secret stopped working unsent."""
    with write_transaction(db.session):
        ids = db.session.scalars(
            update(QueuedMail)
            .where(
                QueuedMail.status == PENDING,
                QueuedMail.sealed.is_(True),
                QueuedMail.wipe_at <= now,
                or_(QueuedMail.claimed_until.is_(None), QueuedMail.claimed_until <= now),
            )
            .values(status=EXPIRED, body="", claimed_until=None)
            .returning(QueuedMail.id)
            .execution_options(synchronize_session=False)
        ).all()
    if ids:
        log.warning(
            "%d queued mail(s) expired unsent (their link no longer works), body wiped: ids %s",
            len(ids),
            ", ".join(str(i) for i in ids[:20]),
        )
    return len(ids)


def retry_pending(*, limit: int = BATCH) -> dict[str, int]:
    """Try every due pending message once (oldest due first); what happened, counted."""
    now = clock.now()
    ids = db.session.scalars(
        select(QueuedMail.id)
        .where(_due(now))
        .order_by(QueuedMail.next_attempt_at, QueuedMail.id)
        .limit(limit)
    ).all()
    db.session.rollback()
    sent = sum(1 for mail_id in ids if deliver(mail_id))
    return {"tried": len(ids), "sent": sent, "still_pending": len(ids) - sent}


def run_due() -> dict[str, int]:
    """The scheduler's mail job: wipe expired secrets, then retry what is due (all of it)."""
    totals = {"expired": wipe_expired(now=clock.now()), "tried": 0, "sent": 0, "still_pending": 0}
    while True:
        counts = retry_pending()
        for key, value in counts.items():
            totals[key] += value
        if counts["tried"] < BATCH or counts["sent"] == 0:
            return totals


def run_due_in_app(app: Flask) -> dict[str, int] | None:
    """:func:`run_due` in an app context for the scheduler; never raises."""
    with app.app_context():
        try:
            return run_due()
        except Exception:
            db.session.rollback()
            log.exception("mail retry failed; the scheduler tries again at its next run")
            return None
        finally:
            db.session.remove()


def retry_now(*, include_failed: bool = True) -> dict[str, int]:
    """``portal mail retry``: make every pending (and failed) message due now, then try them.

    A failed message gets one more attempt (it is failed again at once if that fails).
    Sealed messages whose body was wiped cannot be sent again and are left as they are.
    """
    now = clock.now()
    statuses = (PENDING, FAILED) if include_failed else (PENDING,)
    with write_transaction(db.session):
        result = db.session.execute(
            update(QueuedMail)
            .where(
                QueuedMail.status.in_(statuses),
                or_(QueuedMail.sealed.is_(False), QueuedMail.body != ""),
                or_(QueuedMail.claimed_until.is_(None), QueuedMail.claimed_until <= now),
            )
            .values(status=PENDING, next_attempt_at=now)
            .execution_options(synchronize_session=False)
        )
    made_due = int(result.rowcount or 0)  # type: ignore[attr-defined]
    return {"made_due": made_due, **run_due()}


def counts_by_status() -> dict[str, int]:
    """How many rows each status has (every status present, 0 when none)."""
    found = dict(
        db.session.execute(select(QueuedMail.status, func.count()).group_by(QueuedMail.status))
        .tuples()
        .all()
    )
    return {status: int(found.get(status, 0)) for status in STATUSES}

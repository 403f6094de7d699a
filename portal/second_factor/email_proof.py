"""Proof of the stored email address before the first factor is bound (docs/rules.md R10).

A leaked password must not let someone else enrol first: a user without a factor who did not
log in with a one-time password just issued by an Administrator is sent an 8-digit code at its
stored address (through the mail queue, the body sealed), which it types on the enrolment page.
A code works once, for :data:`VALID` and :data:`MAX_ATTEMPTS` wrong tries; a change of address
voids it; at most :data:`PER_HOUR` are sent per account per hour.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from datetime import timedelta

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update

from portal import emails
from portal import mail_queue
from portal.accounts.models import User
from portal.audit import kinds
from portal.audit.record import record
from portal.db import rowcount
from portal.extensions import db
from portal.keys import normalise_key
from portal.second_factor.models import EmailProofCode

VALID = timedelta(minutes=15)
MAX_ATTEMPTS = 5
PER_HOUR = 5
DIGITS = 8
PURPOSE = "second_factor.email_code"


def _hash(user_pk: int, code: str) -> str:
    return hashlib.sha256(f"{user_pk}:{code}".encode()).hexdigest()


def normalise(code: str) -> str:
    return "".join(code.split())


def live_code(user: User, *, now: datetime) -> EmailProofCode | None:
    """The newest code that may still be used, if any."""
    return db.session.scalar(
        select(EmailProofCode)
        .where(
            EmailProofCode.user_id == user.id,
            EmailProofCode.used_at.is_(None),
            EmailProofCode.expires_at > now,
            EmailProofCode.attempts < MAX_ATTEMPTS,
            EmailProofCode.email_key == normalise_key(user.email),
        )
        .order_by(EmailProofCode.created_at.desc(), EmailProofCode.id.desc())
        .limit(1)
    )


def send(user: User, *, now: datetime) -> mail_queue.QueuedMail | None:
    """Issue a code and queue its email (inside the caller's write transaction); None when the
    hourly cap is reached."""
    sent = db.session.scalar(
        select(func.count())
        .select_from(EmailProofCode)
        .where(
            EmailProofCode.user_id == user.id, EmailProofCode.created_at > now - timedelta(hours=1)
        )
    )
    if (sent or 0) >= PER_HOUR:
        return None
    code = f"{secrets.randbelow(10**DIGITS):0{DIGITS}d}"
    row = EmailProofCode(
        user_id=user.id,
        code_hash=_hash(user.id, code),
        email_key=normalise_key(user.email),
        created_at=now,
        expires_at=now + VALID,
    )
    db.session.add(row)
    record(kinds.EMAIL_PROOF_SENT, actor=user, subject=user, now=now)
    body = emails.render(
        "second_factor_email_code.txt",
        full_name=user.full_name,
        user_id=user.user_id,
        code=code,
        minutes=int(VALID.total_seconds() // 60),
    )
    return mail_queue.enqueue(
        user.email,
        f"Your {emails.APP_NAME} code for setting up a second factor",
        body,
        purpose=PURPOSE,
        ref=user.user_id[:40],
        secret_until=row.expires_at,
    )


def confirm(user: User, code: str, *, now: datetime) -> bool:
    """Is ``code`` the live code of ``user``?  A right one is spent; a wrong one counts
    against the live code (conditional UPDATEs: exact under concurrency)."""
    row = live_code(user, now=now)
    if row is None:
        return False
    code = normalise(code)
    if not code.isdigit() or not hmac.compare_digest(row.code_hash, _hash(user.id, code)):
        db.session.execute(
            update(EmailProofCode)
            .where(EmailProofCode.id == row.id)
            .values(attempts=EmailProofCode.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        return False
    spent = db.session.execute(
        update(EmailProofCode)
        .where(EmailProofCode.id == row.id, EmailProofCode.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    return rowcount(spent) == 1

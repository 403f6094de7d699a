"""Single-use password reset tokens (docs/rules.md R7; docs/security.md RS-01, RS-02).

The token itself (``secrets.token_urlsafe(32)``, 256 bits from the CSPRNG) goes only into the
email; the database keeps its sha256.  Each row also keeps a *fingerprint* of the user taken at
issue time: sha256 over the password hash, the session token, the last login and the email
address.  A token is valid only while it is unused and unexpired, its user may still reset
(``rules.may_self_reset``) and the fingerprint still matches, so it stops working once the
password changes, after a login, after a manual removal or any disable (both rotate the
session token), and once the account's email address changes (the link went to the old one).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from portal.accounts import rules
from portal.accounts.models import User
from portal.db import UTCDateTime
from portal.extensions import db
from portal.keys import normalise_key
from portal.link_tokens import hash_token as hash_token  # re-exported: callers use tokens.*
from portal.link_tokens import new_token as new_token

#: The per-account cap counts the tokens issued within this window.
CAP_WINDOW = timedelta(hours=1)
#: Longer input is not a token of ours (token_urlsafe(32) is 43 characters).
MAX_TOKEN_LENGTH = 100


class PasswordResetToken(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "password_reset_tokens"
    __table_args__ = (
        Index("ix_password_reset_tokens_user_id_created_at", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    #: sha256 (hex) of the token sent by email; the token itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: :func:`fingerprint` of the user when the token was issued.
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Invalid(StrEnum):
    """Why a token cannot be used (each has a RESET-nn message in ``portal.messages``)."""

    UNKNOWN = "unknown"  # never issued, tampered with, or superseded (fingerprint, eligibility)
    EXPIRED = "expired"
    USED = "used"


@dataclass(frozen=True)
class Check:
    """The result of checking a token: the row and its user when valid, else why not."""

    token: PasswordResetToken | None
    user: User | None
    problem: Invalid | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def fingerprint(user: User) -> str:
    """What binds a token to the account as it was: password, sessions, last login and email
    (compared as the look-up compares it: case-folded, so a change of case alone keeps it)."""
    last_login = user.last_login_at.astimezone(UTC).isoformat() if user.last_login_at else "-"
    email = normalise_key(user.email)
    material = "\x00".join((user.password_hash, user.session_token, last_login, email))
    return hashlib.sha256(material.encode()).hexdigest()


def may_reset(user: User) -> bool:
    """R7: the user may reset its own password (an Administrator whose access was not removed)."""
    return rules.may_self_reset(user.to_state(), is_admin=user.is_administrator)


def plausible(token: str) -> bool:
    return 0 < len(token) <= MAX_TOKEN_LENGTH


def issued_since(user: User, since: datetime) -> int:
    """How many tokens ``user`` was issued from ``since`` on (the per-account cap)."""
    count = db.session.scalar(
        select(func.count())
        .select_from(PasswordResetToken)
        .where(PasswordResetToken.user_id == user.id, PasswordResetToken.created_at >= since)
    )
    return count or 0  # COUNT always answers; the driver's typing says it may not


def issue(user: User, *, token: str, now: datetime, minutes: int) -> PasswordResetToken:
    """Store a new token for ``user`` (inside the caller's write transaction)."""
    row = PasswordResetToken(
        user_id=user.id,
        token_hash=hash_token(token),
        fingerprint=fingerprint(user),
        created_at=now,
        expires_at=now + timedelta(minutes=minutes),
    )
    db.session.add(row)
    db.session.flush()
    return row


def check(token_hash: str, *, now: datetime, lock: bool = False) -> Check:
    """Is the token with this hash usable now?  ``lock`` locks its user's row (and the token's)
    for the caller's write transaction, so that completing a reset re-checks under the lock."""
    query = select(PasswordResetToken).where(PasswordResetToken.token_hash == token_hash)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    row = db.session.scalar(query)
    if row is None:
        return Check(None, None, Invalid.UNKNOWN)
    if row.used_at is not None:
        return Check(None, None, Invalid.USED)
    if now >= row.expires_at:
        return Check(None, None, Invalid.EXPIRED)
    user = db.session.get(User, row.user_id, with_for_update=lock, populate_existing=lock)
    if user is None or not may_reset(user) or fingerprint(user) != row.fingerprint:
        return Check(None, None, Invalid.UNKNOWN)  # superseded: the account changed since
    return Check(row, user, None)


def purge_expired(now: datetime) -> int:
    """Delete the tokens that can no longer be used nor count towards the per-account cap.

    Runs inside the caller's write transaction (the nightly job schedules it); returns how many
    rows went.  A used token expires like any other, so it goes too.
    """
    result = db.session.execute(
        delete(PasswordResetToken)
        .where(PasswordResetToken.expires_at <= now)
        .where(PasswordResetToken.created_at < now - CAP_WINDOW)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]

"""One row per email address that ever asked for the newsletter."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from portal.db import UTCDateTime
from portal.extensions import db

PENDING = "pending"  # asked, not yet confirmed: receives nothing but confirmation emails
CONFIRMED = "confirmed"  # confirmed by the emailed link: the only ones who get the newsletter
UNSUBSCRIBED = "unsubscribed"
STATUSES = (PENDING, CONFIRMED, UNSUBSCRIBED)


class Subscriber(db.Model):  # type: ignore[name-defined]
    __tablename__ = "newsletter_subscribers"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'confirmed', 'unsubscribed')", name="status"),
        CheckConstraint("status <> 'confirmed' OR confirmed_at IS NOT NULL", name="confirmed_at"),
        Index("ix_newsletter_subscribers_status_confirmed_at", "status", "confirmed_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The address as typed (trimmed); ``email_key`` is its case-folded form, unique.
    email: Mapped[str] = mapped_column(String(254))
    email_key: Mapped[str] = mapped_column(String(254), unique=True)
    status: Mapped[str] = mapped_column(String(12), default=PENDING)
    #: SHA-256 of the pending confirmation token (the token itself is only in the email);
    #: cleared when used, so each link works once.
    confirm_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    confirm_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: When we last emailed this address because of a sign-up (limits mail to one address).
    last_emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

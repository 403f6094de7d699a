"""A secret shown once after a POST (a one-time password), kept server-side in between.

The Console's "Reset password" answers its POST with a redirect (303) to a page that shows the
new one-time password: a refresh of that page, or the browser's Back and Forward, never resets
the password again (issue 12 point 5).  The password travels from the POST to that page in a
row of ``shown_once``, sealed with the mail queue's key (``portal.mail_secrets``: encrypted at
rest, docs/security.md), never in the cookie session.  The redirect carries a random token;
the row keeps only its sha256.  The first GET by the same Administrator opens the secret and
wipes it; later ones say it was already shown.  Rows are short-lived: a secret not looked at
within :data:`LIFETIME` is wiped, and old rows are deleted whenever a new one is kept.

``subject_id``/``actor_id`` carry no foreign key on purpose: a row outlives neither its
lifetime nor matters once its users are gone (an organisation's erasure need not know it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import CheckConstraint
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from portal import mail_secrets
from portal.db import UTCDateTime
from portal.extensions import db
from portal.link_tokens import hash_token
from portal.link_tokens import new_token

#: How long a kept secret waits to be shown.
LIFETIME = timedelta(minutes=15)
#: Longer input is not a token of ours (``new_token`` makes 43 characters).
MAX_TOKEN_LENGTH = 100


class ShownOnce(db.Model):  # type: ignore[name-defined]
    __tablename__ = "shown_once"
    __table_args__ = (
        CheckConstraint(
            "(sealed IS NULL AND shown_at IS NOT NULL) "
            "OR (sealed IS NOT NULL AND shown_at IS NULL)",
            name="sealed_until_shown",
        ),
        Index("ix_shown_once_created_at", "created_at"),
    )

    #: sha256 (hex) of the token in the redirect; the token itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: The user the secret belongs to, and the Administrator who may see it.
    subject_id: Mapped[int] = mapped_column(Integer)
    actor_id: Mapped[int] = mapped_column(Integer)
    #: The secret, sealed (``mail_secrets.seal``); NULL once shown.
    sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    shown_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class State(StrEnum):
    SHOWN = "shown"  # the secret, this once
    ALREADY_SHOWN = "already_shown"
    EXPIRED = "expired"
    UNKNOWN = "unknown"  # never kept, another Administrator's, or deleted


@dataclass(frozen=True)
class Taken:
    state: State
    secret: str | None = None


def keep(secret: str, *, subject_id: int, actor_id: int, now: datetime) -> str:
    """Seal ``secret`` for one showing; the token for the redirect.  Joins the caller's
    transaction (the caller commits), and deletes rows past their lifetime."""
    db.session.execute(delete(ShownOnce).where(ShownOnce.created_at < now - LIFETIME))
    token = new_token()
    db.session.add(
        ShownOnce(
            token_hash=hash_token(token),
            subject_id=subject_id,
            actor_id=actor_id,
            sealed=mail_secrets.seal(secret),
            created_at=now,
        )
    )
    db.session.flush()
    return token


def take(token: str, *, subject_id: int, actor_id: int, now: datetime) -> Taken:
    """The secret the first time (then wiped); afterwards why not.  Call in a write
    transaction: the row is locked so that two requests cannot both see the secret."""
    if len(token) > MAX_TOKEN_LENGTH:
        return Taken(State.UNKNOWN)
    row = db.session.scalar(
        select(ShownOnce).where(ShownOnce.token_hash == hash_token(token)).with_for_update()
    )
    if row is None or row.subject_id != subject_id or row.actor_id != actor_id:
        return Taken(State.UNKNOWN)
    if row.sealed is None:
        return Taken(State.ALREADY_SHOWN)
    secret = mail_secrets.unseal(row.sealed)
    row.sealed = None
    row.shown_at = now
    if now - row.created_at > LIFETIME:
        return Taken(State.EXPIRED)
    return Taken(State.SHOWN, secret)

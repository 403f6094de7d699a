"""What the Portal team sees of the mail queue: mail that never reached anyone (failed after
its retries, or expired unsent) and mail still waiting after a failed attempt."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy import select

from portal import mail_queue
from portal.extensions import db
from portal.mail_queue import QueuedMail

#: Rows listed per section (newest first); the counts cover every row.
SHOWN = 100


@dataclass(frozen=True)
class Report:
    counts: dict[str, int]
    undelivered: Sequence[QueuedMail]
    retrying: Sequence[QueuedMail]

    @property
    def undelivered_total(self) -> int:
        return sum(self.counts[status] for status in mail_queue.UNDELIVERED)


def undelivered_count() -> int:
    """How many messages failed or expired unsent (the area's home page shows it)."""
    return int(
        db.session.scalar(
            select(func.count())
            .select_from(QueuedMail)
            .where(QueuedMail.status.in_(mail_queue.UNDELIVERED))
        )
        or 0
    )


def report() -> Report:
    newest = (QueuedMail.created_at.desc(), QueuedMail.id.desc())
    undelivered = db.session.scalars(
        select(QueuedMail)
        .where(QueuedMail.status.in_(mail_queue.UNDELIVERED))
        .order_by(*newest)
        .limit(SHOWN)
    ).all()
    retrying = db.session.scalars(
        select(QueuedMail)
        .where(QueuedMail.status == mail_queue.PENDING, QueuedMail.attempts > 0)
        .order_by(*newest)
        .limit(SHOWN)
    ).all()
    return Report(mail_queue.counts_by_status(), undelivered, retrying)

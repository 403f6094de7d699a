"""The record of an access review: the review itself and one item per user it covers.

The users are copied into the review when it starts (User ID, name, profile, state), so the
record still says what the reviewer saw after the users change, and users created later are
not part of it.  A decision is ``keep`` or ``remove``, with who took it and when; the outcome
of a removal (``removed``, or ``no_access``: the user was already without access) is kept
beside it.  Refusals (R4) leave the item undecided: the audit log has them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import UniqueConstraint
from sqlalchemy import text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from portal.accounts import rules
from portal.db import UTCDateTime
from portal.extensions import db


class Decision(StrEnum):
    KEEP = "keep"
    REMOVE = "remove"


class Outcome(StrEnum):
    #: Keep: the user keeps whatever access it has.
    KEPT = "kept"
    #: Remove: access was removed by this review (R4).
    REMOVED = "removed"
    #: Remove: the user had no access already (system-disabled or removed): nothing changed.
    NO_ACCESS = "no_access"


DECISION_LABELS = {Decision.KEEP: "Keep", Decision.REMOVE: "Remove access"}
OUTCOME_LABELS = {
    Outcome.KEPT: "Kept",
    Outcome.REMOVED: "Access removed",
    Outcome.NO_ACCESS: "Already without access",
}


def _sql_list(values: object) -> str:
    return ", ".join(f"'{v}'" for v in values)  # type: ignore[attr-defined]


class AccessReview(db.Model):  # type: ignore[name-defined]
    __tablename__ = "access_reviews"
    __table_args__ = (
        CheckConstraint(
            "(finished_at IS NULL) = (signed_off_by IS NULL)", "signed_off_iff_finished"
        ),
        CheckConstraint("finished_at IS NULL OR finished_at >= started_at", "finished_after_start"),
        CheckConstraint("users_total >= 0", "users_total_range"),
        Index("ix_access_reviews_org_started_at", "organisation_id", "started_at"),
        # At most one review in progress per organisation: starting again resumes it.
        Index(
            "uq_access_reviews_one_open",
            "organisation_id",
            unique=True,
            sqlite_where=text("finished_at IS NULL"),
            postgresql_where=text("finished_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: The Administrator who started it (the User ID is kept as text too, as the audit does).
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    started_by: Mapped[str] = mapped_column(String(64))
    #: Which users it covers, in words ("All users", or the users list's filter).
    scope: Mapped[str] = mapped_column(String(400))
    users_total: Mapped[int] = mapped_column(Integer)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    signed_off_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    signed_off_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    signed_off_name: Mapped[str | None] = mapped_column(String(200), nullable=True)

    @property
    def finished(self) -> bool:
        return self.finished_at is not None


class AccessReviewItem(db.Model):  # type: ignore[name-defined]
    __tablename__ = "access_review_items"
    __table_args__ = (
        UniqueConstraint("review_id", "user_pk", name="uq_access_review_items_review_user"),
        CheckConstraint(
            f"decision IS NULL OR decision IN ({_sql_list(Decision)})", "decision_known"
        ),
        CheckConstraint(f"outcome IS NULL OR outcome IN ({_sql_list(Outcome)})", "outcome_known"),
        CheckConstraint(f"state_at_start IN ({_sql_list(rules.Access)})", "state_at_start_known"),
        CheckConstraint(
            "(decision IS NULL) = (decided_at IS NULL) AND (decision IS NULL) = (outcome IS NULL) "
            "AND (decision IS NULL) = (decided_by IS NULL)",
            "decided_together",
        ),
        CheckConstraint(
            "decision IS NULL OR (decision = 'keep') = (outcome = 'kept')", "outcome_fits_decision"
        ),
        Index("ix_access_review_items_review_user_key", "review_id", "user_id_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("access_reviews.id"))
    user_pk: Mapped[int] = mapped_column(ForeignKey("users.id"))
    #: The user as it was when the review started.
    user_id: Mapped[str] = mapped_column(String(64))
    user_id_key: Mapped[str] = mapped_column(String(64))
    full_name: Mapped[str] = mapped_column(String(200))
    profile: Mapped[str] = mapped_column(String(20))
    state_at_start: Mapped[str] = mapped_column(String(20))
    decision: Mapped[str | None] = mapped_column(String(10), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(10), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)

    @property
    def decision_label(self) -> str:
        return DECISION_LABELS[Decision(self.decision)] if self.decision else "Not decided"

    @property
    def outcome_label(self) -> str:
        return OUTCOME_LABELS[Outcome(self.outcome)] if self.outcome else ""

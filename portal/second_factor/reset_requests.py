"""Two-person second-factor resets (docs/security.md, "The two-person rule"): the table.

One Portal team member asks for a user's factors to be reset, naming a helpdesk request; a
different member approves it in the app; either may cancel.  A request is open for
:data:`LIFETIME` after it was made.  The rule that the requester never approves their own
request is checked by ``resets.approve`` and, in case code ever forgets, by a CHECK here.
"""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import CheckConstraint
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from portal.db import UTCDateTime
from portal.extensions import db

#: A request not approved within this time can no longer be approved.
LIFETIME = timedelta(hours=24)


class Status(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    CANCELLED = "cancelled"


class FactorResetRequest(db.Model):  # type: ignore[name-defined]
    __tablename__ = "second_factor_reset_requests"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'approved', 'cancelled')", name="status_known"),
        # Decided exactly when no longer pending.
        CheckConstraint(
            "(status = 'pending') = (decided_by_id IS NULL AND decided_at IS NULL)",
            name="decided_iff_not_pending",
        ),
        # The two-person rule, in the database too.
        CheckConstraint(
            "status <> 'approved' OR decided_by_id <> requested_by_id",
            name="approver_is_not_requester",
        ),
        CheckConstraint("expires_at > requested_at", name="expires_after_request"),
        Index("ix_second_factor_reset_requests_status_id", "status", "id"),
        Index("ix_second_factor_reset_requests_user_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Whose factors are to be reset.  Erasing a firm (``portal org delete``) deletes its users
    #: and its helpdesk requests: their reset requests go with them (ON DELETE CASCADE).
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    #: The helpdesk request this was asked for (it must exist).
    helpdesk_request_id: Mapped[int] = mapped_column(
        ForeignKey("helpdesk_requests.id", ondelete="CASCADE")
    )
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(10), default=Status.PENDING.value)
    #: Who approved or cancelled it, and when.
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    def is_open(self, now: datetime) -> bool:
        """Pending and not yet expired: it may still be approved or cancelled."""
        return self.status == Status.PENDING and now < self.expires_at

"""The nightly sweep (R2, R3 for every enabled user) as set-based SQL.

Two UPDATE … RETURNING statements over indexed columns, built from the rules' constants,
plus one bulk insert of the audit events.  A second run the same night finds nothing to do.
"""

from __future__ import annotations

from datetime import date
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy import update

from portal.accounts import rules
from portal.accounts.models import User
from portal.audit.models import SYSTEM
from portal.audit.models import AuditEvent
from portal.extensions import db


def sweep(*, now: datetime, today: date) -> dict[str, int]:
    """Disable every enabled user that is due (expiry first, as ``rules.due_disable``)."""
    counts: dict[str, int] = {}
    for reason, condition in (
        (rules.Reason.EXPIRY, User.expires_on <= today),
        (rules.Reason.INACTIVITY, User.last_use_at < rules.inactivity_cutoff(now)),
    ):
        rows = db.session.execute(
            update(User)
            .where(User.enabled.is_(True), condition)
            .values(enabled=False, disabled_reason=reason.value)
            .returning(User.id, User.user_id, User.organisation_id)
            .execution_options(synchronize_session=False)
        ).all()
        if rows:
            db.session.execute(
                insert(AuditEvent),
                [
                    {
                        "occurred_at": now,
                        "organisation_id": org_id,
                        "kind": rules.EventKind.SYSTEM_DISABLED.value,
                        "actor": SYSTEM,
                        "subject_id": pk,
                        "subject": user_id,
                        "reason": reason.value,
                    }
                    for pk, user_id, org_id in rows
                ],
            )
        counts[reason.value] = len(rows)
    db.session.expire_all()
    return counts

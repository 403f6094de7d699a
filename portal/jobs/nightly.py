"""The nightly sweep (R2, R3 for every enabled user) as set-based SQL, in batches.

Each batch is one ``UPDATE users … WHERE id IN (SELECT id … LIMIT n) RETURNING`` over the
indexes ``ix_users_enabled_expires_on`` / ``ix_users_enabled_last_use_at`` plus one bulk insert
of the batch's audit events (actor ``system``, the reason), repeated until a batch comes back
empty.  Only one batch of rows is ever in memory, whatever the number of users.  The
conditions come from the rules' constants and functions (expiry first, as
``rules.due_disable``), so a second run the same night finds nothing to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import date
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update

from portal.accounts import rules
from portal.accounts.models import User
from portal.audit.models import SYSTEM
from portal.audit.models import AuditEvent
from portal.db import write_transaction
from portal.extensions import db

#: Users disabled per statement (and per transaction in :func:`run_sweep`).
BATCH_SIZE = 5000
#: How many User IDs per reason a report keeps to show (the counts are always exact).
SAMPLE_SIZE = 20


def conditions(*, now: datetime, today: date) -> list[tuple[rules.Reason, ColumnElement[bool]]]:
    """Each reason with the SQL condition that makes an *enabled* user due, in rule order.

    Expiry wins (R3 before R2), so the inactivity condition excludes expired users: this only
    matters for counting without changing anything (``--dry-run``), since the real sweep
    disables the expired ones first.
    """
    expired = User.expires_on <= today  # rules.is_expired: today >= expires_on
    inactive = User.last_use_at < rules.inactivity_cutoff(now)  # rules.due_disable
    return [
        (rules.Reason.EXPIRY, expired),
        (rules.Reason.INACTIVITY, inactive & or_(User.expires_on.is_(None), ~expired)),
    ]


@dataclass
class SweepReport:
    """What a sweep changed (or, dry, would change): counts by reason and a sample of User IDs."""

    counts: dict[str, int] = field(default_factory=dict)
    samples: dict[str, list[str]] = field(default_factory=dict)
    dry_run: bool = False

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, reason: rules.Reason, user_ids: list[str]) -> None:
        self.counts[reason.value] = self.counts.get(reason.value, 0) + len(user_ids)
        sample = self.samples.setdefault(reason.value, [])
        sample.extend(user_ids[: SAMPLE_SIZE - len(sample)])


def _disable_batch(
    reason: rules.Reason, condition: ColumnElement[bool], now: datetime, batch_size: int
) -> list[Any]:
    """Disable up to ``batch_size`` due users and audit them; returns their rows."""
    due_ids = (
        select(User.id)
        .where(User.enabled.is_(True), condition)
        .order_by(User.id)
        .limit(batch_size)
        .scalar_subquery()
    )
    rows = db.session.execute(
        update(User)
        # The conditions again: on PostgreSQL a login may commit between the subquery and
        # the row's update, and READ COMMITTED re-checks only this outer WHERE.
        .where(User.id.in_(due_ids), User.enabled.is_(True), condition)
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
    return rows


def sweep(*, now: datetime, today: date, batch_size: int = BATCH_SIZE) -> dict[str, int]:
    """Disable every enabled user that is due, inside the caller's write transaction.

    Returns the counts by reason.  Use :func:`run_sweep` to commit batch by batch instead.
    """
    report = SweepReport()
    for reason, condition in conditions(now=now, today=today):
        while rows := _disable_batch(reason, condition, now, batch_size):
            report.add(reason, [row.user_id for row in rows])
        report.counts.setdefault(reason.value, 0)
    db.session.expire_all()
    return report.counts


def run_sweep(*, now: datetime, today: date, batch_size: int = BATCH_SIZE) -> SweepReport:
    """The sweep, one write transaction per batch (SQLite's write lock is held briefly, so
    logins go on meanwhile).  Stopping half-way loses nothing: the next run does the rest."""
    report = SweepReport()
    for reason, condition in conditions(now=now, today=today):
        report.counts.setdefault(reason.value, 0)
        while True:
            with write_transaction(db.session):
                rows = _disable_batch(reason, condition, now, batch_size)
            if not rows:
                break
            report.add(reason, [row.user_id for row in rows])
    db.session.expire_all()
    return report


def preview(*, now: datetime, today: date) -> SweepReport:
    """What :func:`run_sweep` would change (``--dry-run``): counts and samples, no writes."""
    report = SweepReport(dry_run=True)
    for reason, condition in conditions(now=now, today=today):
        due = (User.enabled.is_(True), condition)
        report.counts[reason.value] = db.session.scalar(select(func.count(User.id)).where(*due))
        report.samples[reason.value] = list(
            db.session.scalars(
                select(User.user_id).where(*due).order_by(User.id).limit(SAMPLE_SIZE)
            )
        )
    db.session.rollback()
    return report

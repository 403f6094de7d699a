"""The nightly sweep (R2, R3 for every enabled user) as set-based SQL, in batches.

Each batch disables up to BATCH_SIZE due users with one ``UPDATE users … WHERE id IN (SELECT
id … LIMIT n)`` over the indexes ``ix_users_enabled_expires_on`` /
``ix_users_enabled_last_use_at``, and records their audit events (actor ``system``, the
reason) with one ``INSERT … SELECT``: no Python runs per user.  Batches repeat until one comes
back empty, so memory stays flat whatever the number of users.  The conditions come from the
rules' constants and functions (expiry first, as ``rules.due_disable``), so a second run the
same night finds nothing to do.  ``bench/sweep.py`` measures it at 1,000,000 users.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from datetime import date
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import literal
from sqlalchemy import select
from sqlalchemy import update

from portal.accounts import rules
from portal.accounts import states
from portal.accounts.models import User
from portal.audit.models import SYSTEM
from portal.audit.models import AuditEvent
from portal.db import UTCDateTime
from portal.db import write_transaction
from portal.extensions import db

#: Users disabled per statement (and per transaction in :func:`run_sweep`).
BATCH_SIZE = 20_000
#: SQLite's page cache for the sweep's connection during each batch (KiB; SQLite's default is
#: 2 MiB): the batches touch pages all over the users table and its indexes.  An upper bound:
#: a small database never fills it, and the connection's own size is restored after the batch.
SQLITE_CACHE_KIB = 262_144
#: How many User IDs per reason a report keeps to show (the counts are always exact).
SAMPLE_SIZE = 20


def conditions(*, now: datetime, today: date) -> list[tuple[rules.Reason, ColumnElement[bool]]]:
    """Each reason with the SQL condition that makes an *enabled* user due, in rule order.

    Expiry wins (R3 before R2), so the inactivity condition excludes expired users: this only
    matters for counting without changing anything (``--dry-run``), since the real sweep
    disables the expired ones first.
    """
    expired = states.expired(today)
    return [
        (rules.Reason.EXPIRY, expired),
        (rules.Reason.INACTIVITY, states.inactive(now) & ~expired),
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


@contextmanager
def _sqlite_cache() -> Iterator[None]:
    """A larger page cache on the transaction's SQLite connection for the block, then the
    connection's own again (it goes back to the pool)."""
    if db.engine.dialect.name != "sqlite":
        yield
        return
    connection = db.session.connection()
    before = int(connection.exec_driver_sql("PRAGMA cache_size").scalar() or -2000)
    connection.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB:d}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size = {before:d}")


def _due_batch(condition: ColumnElement[bool], batch_size: int) -> Any:
    return (
        select(User.id)
        .where(User.enabled.is_(True), condition)
        .limit(batch_size)  # no ORDER BY: any due rows will do, and no sort per batch
        .scalar_subquery()
    )


def _disable(reason: rules.Reason, condition: ColumnElement[bool], batch_size: int) -> Any:
    """UPDATE one batch of due users.  The conditions are repeated in the outer WHERE: on
    PostgreSQL a login may commit between the subquery and the row's update, and READ
    COMMITTED re-checks only the outer WHERE."""
    return (
        update(User)
        .where(User.id.in_(_due_batch(condition, batch_size)), User.enabled.is_(True), condition)
        .values(enabled=False, disabled_reason=reason.value)
    )


def _audit_columns(now: datetime, reason: rules.Reason) -> list[Any]:
    """The audit event's values, per disabled user, as SQL (no Python per row)."""
    return [
        literal(now, UTCDateTime()),
        literal(rules.EventKind.SYSTEM_DISABLED.value),
        literal(SYSTEM),
        literal(reason.value),
    ]


_AUDIT_TARGET = [
    "occurred_at",
    "kind",
    "actor",
    "reason",
    "organisation_id",
    "subject_id",
    "subject",
]


def _disable_batch(
    reason: rules.Reason, condition: ColumnElement[bool], now: datetime, batch_size: int
) -> list[str]:
    """Disable up to ``batch_size`` due users and audit them; returns their User IDs.

    PostgreSQL: one statement, ``WITH done AS (UPDATE … RETURNING) INSERT … SELECT FROM done``.
    SQLite (no DML in a WITH): ``UPDATE … RETURNING id`` and ``INSERT … SELECT`` of those ids
    (passed as one JSON array); inside the write transaction's BEGIN IMMEDIATE nobody else
    writes in between.
    """
    fixed = _audit_columns(now, reason)
    if db.engine.dialect.name == "postgresql":
        done = (
            _disable(reason, condition, batch_size)
            .returning(User.id, User.user_id, User.organisation_id)
            .cte("done")
        )
        statement = (
            insert(AuditEvent)
            .from_select(
                _AUDIT_TARGET,
                select(*fixed, done.c.organisation_id, done.c.id, done.c.user_id),
            )
            .returning(AuditEvent.subject)
        )
        return list(db.session.scalars(statement))
    ids = list(
        db.session.scalars(
            _disable(reason, condition, batch_size)
            .returning(User.id)
            .execution_options(synchronize_session=False)
        )
    )
    if not ids:
        return []
    batch = select(func.json_each(json.dumps(ids)).table_valued("value").c.value)
    statement = (
        insert(AuditEvent)
        .from_select(
            _AUDIT_TARGET,
            select(*fixed, User.organisation_id, User.id, User.user_id).where(
                User.id.in_(batch.scalar_subquery())
            ),
        )
        .returning(AuditEvent.subject)
    )
    return list(db.session.scalars(statement))


def sweep(*, now: datetime, today: date, batch_size: int = BATCH_SIZE) -> dict[str, int]:
    """Disable every enabled user that is due, inside the caller's write transaction.

    Returns the counts by reason.  Use :func:`run_sweep` to commit batch by batch instead.
    """
    report = SweepReport()
    for reason, condition in conditions(now=now, today=today):
        while user_ids := _disable_batch(reason, condition, now, batch_size):
            report.add(reason, user_ids)
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
            with write_transaction(db.session), _sqlite_cache():
                user_ids = _disable_batch(reason, condition, now, batch_size)
            if not user_ids:
                break
            report.add(reason, user_ids)
    db.session.expire_all()
    return report


def preview(*, now: datetime, today: date) -> SweepReport:
    """What :func:`run_sweep` would change (``--dry-run``): counts and samples, no writes."""
    report = SweepReport(dry_run=True)
    for reason, condition in conditions(now=now, today=today):
        due = (User.enabled.is_(True), condition)
        count = db.session.scalar(select(func.count(User.id)).where(*due))
        report.counts[reason.value] = count or 0
        report.samples[reason.value] = list(
            db.session.scalars(
                select(User.user_id).where(*due).order_by(User.id).limit(SAMPLE_SIZE)
            )
        )
    db.session.rollback()
    return report

"""The background job table: work too long for a web request (a bulk action on thousands of
users, an import that hashes hundreds of passwords) is queued here, in the database, and the
scheduler process claims it (never a thread in the web worker).

A job row names a *kind* (which handler runs it) and the id of the record it works on (a bulk
operation, an import).  Claiming is one atomic ``UPDATE … WHERE status = 'queued'``, so that
several schedulers (workers, hosts) never run the same job twice.  Handlers are resumable: they
work through rows still pending, so a job whose process died (its heartbeat older than
:data:`STALE_AFTER`) is claimed again and finishes what is left.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from datetime import datetime
from datetime import timedelta

from flask import Flask
from sqlalchemy import CheckConstraint
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from portal import clock
from portal.db import UTCDateTime
from portal.db import write_transaction
from portal.extensions import db
from portal.jobs import lease

log = logging.getLogger(__name__)

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
STATUSES = (QUEUED, RUNNING, DONE, FAILED)
#: A running job whose heartbeat is older than this is taken to be dead and claimed again.
STALE_AFTER = timedelta(minutes=10)
#: How many jobs one scheduler tick runs at most (the next tick takes the rest).
PER_TICK = 5

#: kind -> "module:function" taking the job's ``ref_id`` (imported when first needed, so that
#: this module imports no feature module).
HANDLERS: dict[str, str] = {
    "bulk_operation": "portal.console.bulk:run_job",
    "user_import": "portal.console.user_import:run_job",
}


class BackgroundJob(db.Model):  # type: ignore[name-defined]
    __tablename__ = "background_jobs"
    __table_args__ = (
        CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed')", name="background_job_status"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    #: The id of the record the job works on (``bulk_operations.id``, ``user_imports.id``).
    ref_id: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), default=QUEUED, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    runner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


def enqueue(kind: str, ref_id: int, *, now: datetime) -> BackgroundJob:
    """Queue a job in the caller's transaction (it exists exactly when its record does)."""
    if kind not in HANDLERS:
        raise ValueError(f"no handler for background jobs of kind {kind!r}")
    job = BackgroundJob(kind=kind, ref_id=ref_id, status=QUEUED, created_at=now)
    db.session.add(job)
    db.session.flush()
    return job


def claim_next(*, now: datetime) -> tuple[int, str, int] | None:
    """Claim the oldest queued job (or a running one whose process died): (id, kind, ref_id)."""
    claimable = or_(
        BackgroundJob.status == QUEUED,
        (BackgroundJob.status == RUNNING) & (BackgroundJob.heartbeat_at < now - STALE_AFTER),
    )
    with write_transaction(db.session):
        candidate = db.session.scalar(
            select(BackgroundJob.id).where(claimable).order_by(BackgroundJob.id).limit(1)
        )
        if candidate is None:
            return None
        row = db.session.execute(
            update(BackgroundJob)
            .where(BackgroundJob.id == candidate, claimable)
            .values(status=RUNNING, claimed_at=now, heartbeat_at=now, runner=lease.runner_name())
            .returning(BackgroundJob.id, BackgroundJob.kind, BackgroundJob.ref_id)
            .execution_options(synchronize_session=False)
        ).first()
    return (row[0], row[1], row[2]) if row is not None else None


def heartbeat(job_id: int) -> None:
    """Called by handlers between chunks: the job is alive (in the caller's transaction)."""
    db.session.execute(
        update(BackgroundJob)
        .where(BackgroundJob.id == job_id)
        .values(heartbeat_at=clock.now())
        .execution_options(synchronize_session=False)
    )


def _finish(job_id: int, status: str, error: str | None = None) -> None:
    with write_transaction(db.session):
        db.session.execute(
            update(BackgroundJob)
            .where(BackgroundJob.id == job_id)
            .values(status=status, finished_at=clock.now(), error=error)
            .execution_options(synchronize_session=False)
        )


def handler(kind: str) -> Callable[[int, int], None]:
    module, name = HANDLERS[kind].split(":")
    fn: Callable[[int, int], None] = getattr(importlib.import_module(module), name)
    return fn


def run_queued(*, limit: int = PER_TICK) -> int:
    """Claim and run up to ``limit`` jobs; returns how many ran.  A failing job is marked
    failed (with its error) and the others go on."""
    ran = 0
    while ran < limit:
        claimed = claim_next(now=clock.now())
        if claimed is None:
            break
        job_id, kind, ref_id = claimed
        ran += 1
        try:
            handler(kind)(job_id, ref_id)
        except Exception as exc:
            db.session.rollback()
            log.exception("background job %s (%s %s) failed", job_id, kind, ref_id)
            _finish(job_id, FAILED, repr(exc)[:2000])
        else:
            _finish(job_id, DONE)
            log.info("background job %s (%s %s) done", job_id, kind, ref_id)
    return ran


def run_queued_in_app(app: Flask) -> int | None:
    """The scheduler's entry point: :func:`run_queued` in an app context; never raises."""
    with app.app_context():
        try:
            return run_queued()
        except Exception:
            db.session.rollback()
            log.exception("background jobs: the next tick tries again")
            return None
        finally:
            db.session.remove()

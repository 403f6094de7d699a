"""Which nightly runs happened: the claim that makes each (job, night) run exactly once.

A run starts by inserting its (job, night) row; the unique constraint lets one process win
across workers and hosts (insert-or-nothing), the loser skips.  The row then records the
outcome: finished_at, status (running / ok / failed), counts and the error.  While it runs, its
heartbeat and the counts of the steps already done are kept up to date, so that a run whose
process died is taken over and finished once (``portal.jobs.lease``).
"""

from __future__ import annotations

from datetime import date
from datetime import datetime

from sqlalchemy import Date
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from portal.db import UTCDateTime
from portal.extensions import db

RUNNING = "running"
OK = "ok"
FAILED = "failed"


class JobRun(db.Model):  # type: ignore[name-defined]
    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "night", name="uq_job_runs_job_night"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job: Mapped[str] = mapped_column(String(40))
    #: The night the run is for, in PORTAL_TIMEZONE (the date of its 02:00).
    night: Mapped[date] = mapped_column(Date)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: Renewed while the run works; a "running" run whose heartbeat is older than the lease
    #: is taken over (``portal.jobs.lease``).  None: rows from before the lease (use started_at).
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(10), default=RUNNING)
    #: Where it ran ("host:pid").
    runner: Mapped[str] = mapped_column(String(100))
    #: JSON of what the run counted (users disabled by reason, mails sent, …).
    counts: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)

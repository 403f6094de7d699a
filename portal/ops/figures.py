"""Figures read from the database when ``/metrics`` is scraped, so that any web worker shows
them whichever process did the work (the scheduler process records its runs in ``job_runs``).

A few grouped queries on indexed columns per scrape; none grows with the number of users.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime
from importlib import metadata

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy import func
from sqlalchemy import select

from portal import mail_queue
from portal.extensions import db
from portal.helpdesk.models import HelpdeskRequest
from portal.jobs.runs import OK
from portal.jobs.runs import JobRun

log = logging.getLogger(__name__)

DISTRIBUTION = "claims-portal-console"


def version() -> str:
    """The installed distribution's version (pyproject's), or ``unknown`` if not installed."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"


def build_info() -> Metric:
    info = GaugeMetricFamily(
        "portal_build_info", "The running version (always 1).", labels=["version"]
    )
    info.add_metric([version()], 1)
    return info


def _seconds(moment: datetime) -> float:
    return moment.timestamp()


def mail_queue_figures(now: datetime) -> Iterator[Metric]:
    by_status = dict(
        db.session.execute(
            select(mail_queue.QueuedMail.status, func.count()).group_by(
                mail_queue.QueuedMail.status
            )
        )
        .tuples()
        .all()
    )
    depth = GaugeMetricFamily(
        "portal_mail_queue_messages", "Messages in the mail queue by status.", labels=["status"]
    )
    for status in mail_queue.STATUSES:
        depth.add_metric([status], by_status.get(status, 0))
    yield depth
    oldest = db.session.scalar(
        select(func.min(mail_queue.QueuedMail.created_at)).where(
            mail_queue.QueuedMail.status == mail_queue.PENDING
        )
    )
    yield GaugeMetricFamily(
        "portal_mail_queue_oldest_pending_age_seconds",
        "Age of the oldest message still waiting to be sent (0 when none waits).",
        value=max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0,
    )


def helpdesk_figures() -> Iterator[Metric]:
    from portal.helpdesk.models import Status

    rows = dict(
        db.session.execute(
            select(HelpdeskRequest.status, func.count()).group_by(HelpdeskRequest.status)
        )
        .tuples()
        .all()
    )
    requests = GaugeMetricFamily(
        "portal_helpdesk_requests", "Helpdesk requests by status.", labels=["status"]
    )
    for status in Status:
        requests.add_metric([status.value], rows.get(status.value, 0))
    yield requests


def job_figures() -> Iterator[Metric]:
    """Each job's last successful run, and the last successful nightly run's duration and
    counts (the sweep's users disabled by reason, mails sent …)."""
    last_ok = db.session.execute(
        select(JobRun.job, func.max(JobRun.finished_at))
        .where(JobRun.status == OK, JobRun.finished_at.is_not(None))
        .group_by(JobRun.job)
    ).all()
    success = GaugeMetricFamily(
        "portal_job_last_success_timestamp_seconds",
        "When each job last finished successfully (Unix time).",
        labels=["job"],
    )
    for job, finished in last_ok:
        success.add_metric([job], _seconds(finished))
    yield success

    duration = GaugeMetricFamily(
        "portal_job_last_duration_seconds",
        "How long each job's last successful run took.",
        labels=["job"],
    )
    counts = GaugeMetricFamily(
        "portal_job_last_count",
        "What each job's last successful run counted, by step and item.",
        labels=["job", "step", "item"],
    )
    for job, _finished in last_ok:
        run = db.session.scalars(
            select(JobRun)
            .where(JobRun.job == job, JobRun.status == OK, JobRun.finished_at.is_not(None))
            .order_by(JobRun.finished_at.desc())
            .limit(1)
        ).first()
        if run is None or run.finished_at is None:
            continue
        duration.add_metric([job], (run.finished_at - run.started_at).total_seconds())
        for step, items in _counts(run.counts):
            for item, value in items:
                counts.add_metric([job, step, item], value)
    yield duration
    yield counts


def _counts(raw: str | None) -> Iterator[tuple[str, list[tuple[str, float]]]]:
    try:
        steps = json.loads(raw or "{}")
    except ValueError:
        return
    if not isinstance(steps, dict):
        return
    for step, items in sorted(steps.items()):
        if isinstance(items, dict):
            numbers = [
                (str(k), float(v))
                for k, v in sorted(items.items())
                if isinstance(v, int | float) and not isinstance(v, bool)
            ]
            yield str(step), numbers


class DatabaseFigures:
    """A Prometheus collector over the database; registered only on the scrape's registry."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def collect(self) -> Iterator[Metric]:
        yield build_info()
        try:
            found = [
                *mail_queue_figures(self.now),
                *helpdesk_figures(),
                *job_figures(),
            ]
        except Exception as exc:  # the database is down or unmigrated: /readyz says which
            log.warning("metrics: database figures unavailable (%s)", type(exc).__name__)
            found = []
        finally:
            db.session.rollback()
        yield GaugeMetricFamily(
            "portal_database_figures_up",
            "1 when the figures read from the database are in this scrape, else 0.",
            value=1 if found else 0,
        )
        yield from found

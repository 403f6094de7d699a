"""``flask --app app portal sweep | jobs | scheduler``: the nightly jobs by hand, their
history, and the scheduler on its own (backups: ``portal.backup.commands``)."""

from __future__ import annotations

import contextlib
import json
import logging
from datetime import date
from datetime import datetime
from zoneinfo import ZoneInfo

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from portal import clock
from portal.extensions import db
from portal.jobs import lease
from portal.jobs import nightly
from portal.jobs import runner
from portal.jobs.runs import RUNNING
from portal.jobs.runs import JobRun

log = logging.getLogger(__name__)


def _as_of(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date: use YYYY-MM-DD, e.g. 2026-11-22", param_hint="--as-of"
        ) from None


def _moment_for(day: date) -> datetime:
    """The nightly run's instant on ``day``: 02:00 local time in PORTAL_TIMEZONE."""
    tz = ZoneInfo(current_app.config["PORTAL_TIMEZONE"])
    return datetime.combine(day, runner.RUN_AT, tzinfo=tz).astimezone(ZoneInfo("UTC"))


def _print_report(report: nightly.SweepReport, today: date) -> None:
    verb = "Would disable" if report.dry_run else "Disabled"
    click.echo(f"{verb} {report.total} user(s) as of {today.isoformat()}:")
    for reason, count in report.counts.items():
        click.echo(f"  {reason}: {count}")
        sample = report.samples.get(reason, [])
        if sample:
            more = f" … and {count - len(sample)} more" if count > len(sample) else ""
            click.echo(f"    {', '.join(sample)}{more}")
    if report.dry_run:
        click.echo("Dry run: nothing was changed.")


@click.command("sweep")
@click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")
@click.option("--as-of", metavar="YYYY-MM-DD", help="Evaluate the rules as of this date.")
def sweep(dry_run: bool, as_of: str | None) -> None:
    """Disable the users due for inactivity (R2) or expiry (R3); audited as 'system'.

    --as-of evaluates the rules at 02:00 on that date (PORTAL_TIMEZONE) instead of now; a
    future date is allowed only with --dry-run.
    """
    day = _as_of(as_of)
    if day is None:
        now, today = clock.now(), clock.today()
    else:
        if day > clock.today() and not dry_run:
            raise click.UsageError(
                "--as-of a future date would disable users early: add --dry-run to preview it"
            )
        now, today = _moment_for(day), day
    if dry_run:
        report = nightly.preview(now=now, today=today)
    else:
        batch_size = int(current_app.config["PORTAL_SWEEP_BATCH_SIZE"])
        report = nightly.run_sweep(now=now, today=today, batch_size=batch_size)
    _print_report(report, today)


@click.command("jobs")
@click.option("--limit", default=10, show_default=True, help="How many runs to list.")
def jobs(limit: int) -> None:
    """List the last nightly runs: night, outcome, where and when it ran, what it counted."""
    if limit < 1:
        raise click.BadParameter("must be 1 or more", param_hint="--limit")
    runs = db.session.scalars(
        select(JobRun).order_by(JobRun.night.desc(), JobRun.id.desc()).limit(limit)
    ).all()
    db.session.rollback()
    now = clock.now()
    if not runs:
        click.echo("No nightly run yet.")
        return
    for run in runs:
        took = ""
        if run.finished_at is not None:
            took = f" in {(run.finished_at - run.started_at).total_seconds():.1f} s"
        started = run.started_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        click.echo(f"{run.night.isoformat()}  {run.job:<8} {run.status:<8} {started}{took}")
        click.echo(f"    on {run.runner}")
        if run.status == RUNNING:
            beat = lease.last_sign_of_life(run).strftime("%Y-%m-%d %H:%M:%S UTC")
            stale = lease.is_stale(run, now=now)
            what = "its process is gone: the next scheduler check finishes it" if stale else "alive"
            click.echo(f"    last heartbeat {beat} ({what})")
        if run.counts:
            counts = json.loads(run.counts)
            click.echo(f"    {json.dumps(counts, sort_keys=True)}")
        if run.error:
            first = run.error.strip().splitlines()[0]
            click.echo(f"    error: {first}")


@click.command("scheduler")
def scheduler() -> None:
    """Run the nightly scheduler alone, in the foreground (beside gunicorn; Ctrl-C stops it).

    Runs the nightly jobs at 02:00 in PORTAL_TIMEZONE, and at start-up catches up a missed
    night.  Safe to run on several hosts: each night runs once (a claim in the database).
    """
    if not logging.getLogger().handlers:  # the runs' start, end, counts and failures
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    existing = app.extensions.pop(runner.EXTENSION_KEY, None)
    if existing is not None:  # never two schedulers in one process
        existing.shutdown(wait=False)
    # Log lines, not plain output: the process's whole output is one format (JSON lines).
    log.info(
        "Scheduler running: nightly jobs at %s %s (Ctrl-C to stop).",
        f"{runner.RUN_AT:%H:%M}",
        app.config["PORTAL_TIMEZONE"],
    )
    with contextlib.suppress(KeyboardInterrupt):
        runner.run_blocking(app)
    log.info("Scheduler stopped.")


def register(group: AppGroup) -> None:
    """Add these commands to the ``portal`` group."""
    for command in (sweep, jobs, scheduler):
        group.add_command(command)

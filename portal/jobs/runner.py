"""The nightly run (docs/rules.md §7): claimed once per night across processes and hosts, scheduled
by APScheduler 3 at 02:00 in PORTAL_TIMEZONE, caught up at start-up after downtime.

A run first *claims* its (job, night) by inserting a ``job_runs`` row with
``INSERT … ON CONFLICT DO NOTHING`` in a transaction of its own: the unique constraint lets
exactly one process win, whatever the number of workers, schedulers or hosts; the others log
"already claimed" and skip.  The winner then runs the steps (sweep, token purge, expired
passkey challenges, expiry digests, mail retry), each on its own so that one failing step does
not stop the others, and records the outcome (ok / failed), the counts and the errors in its
row.  Nothing here is needed at login: R2 and R3 are checked there on their own.

A process can die half-way (killed, the machine lost).  The run keeps a heartbeat and records
each step as it finishes; a run left "running" by a dead process is taken over by the next
scheduler that looks (at its start, and every :data:`CHECK_EVERY`), which runs only the steps
that are left, so the night still completes once (``portal.jobs.lease``).

The scheduler is never started at import.  :func:`start` (a BackgroundScheduler) is called by
the factory only when PORTAL_SCHEDULER is on and the process serves requests (see
:func:`wanted`); ``flask --app app portal scheduler`` runs :func:`run_blocking` alone, the
recommended way beside gunicorn.
"""

from __future__ import annotations

import json
import logging
import signal
import traceback
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from flask import Flask
from flask import current_app
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite

from portal import clock
from portal import mail_queue
from portal.accounts import lockout_notices
from portal.accounts import notices
from portal.accounts import tokens
from portal.audit import erasure
from portal.db import write_transaction
from portal.extensions import db
from portal.helpdesk import page_views
from portal.jobs import lease
from portal.jobs import nightly
from portal.jobs import queue
from portal.jobs.runs import FAILED
from portal.jobs.runs import OK
from portal.jobs.runs import RUNNING
from portal.jobs.runs import JobRun
from portal.second_factor import passkeys

log = logging.getLogger(__name__)

JOB = "nightly"
#: The nightly run starts at this local time (PORTAL_TIMEZONE).
RUN_AT = time(2, 0)
#: A run delayed by up to this long (the process was suspended, the machine busy) still runs.
MISFIRE_GRACE = timedelta(hours=6)
EXTENSION_KEY = "portal.scheduler"
CRON_JOB_ID = "nightly"
CATCH_UP_JOB_ID = "nightly-catch-up"
CHECK_JOB_ID = "nightly-check"
#: How often a scheduler looks for a night left unfinished by a process that died.
CHECK_EVERY = lease.LEASE / 2
MAIL_JOB_ID = "mail-retry"
LOCKOUT_ALERTS_JOB_ID = "lockout-alerts"
#: How often the Administrators' lockout emails that waited for their window are sent.
LOCKOUT_ALERTS_EVERY = timedelta(minutes=1)
BACKGROUND_JOBS_ID = "background-jobs"


# --- nights and claims ---------------------------------------------------------------------


def night_of(moment: datetime, tz: str) -> date:
    """The night a run at ``moment`` belongs to: the date of the latest 02:00 (local wall time
    in ``tz``) at or before ``moment``.  Before 02:00 it is still yesterday's night."""
    local = moment.astimezone(ZoneInfo(tz))
    return local.date() if local.time() >= RUN_AT else local.date() - timedelta(days=1)


def _insert_for(dialect: str) -> Any:
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise RuntimeError(f"no insert-or-nothing for the {dialect} dialect")


@dataclass
class Claim:
    """A run this process won: its id, and the counts of the steps a process that died
    had already finished (empty for a fresh claim)."""

    run_id: int
    done: dict[str, Any] = field(default_factory=dict)
    taken_over_from: str | None = None


def claim(job: str, night: date, *, now: datetime) -> int | None:
    """Insert-or-nothing the (job, night) row; its id when this process won, else None.

    Committed at once, so that every other process sees the claim before any work starts.
    The claim alone: the run is not marked as running in this process (see :func:`claim_run`).
    """
    won = claim_run(job, night, now=now, take_over=False)
    if won is None:
        return None
    lease.release(won.run_id)
    return won.run_id


def claim_run(job: str, night: date, *, now: datetime, take_over: bool = True) -> Claim | None:
    """Win (job, night): a fresh claim, or (``take_over``) the takeover of a stale one.  The
    run is then held by this process (``lease.hold``) until the caller releases it."""
    insert = _insert_for(db.engine.dialect.name)
    me = lease.runner_name()
    with write_transaction(db.session):
        won = db.session.execute(
            insert(JobRun)
            .values(
                job=job, night=night, started_at=now, heartbeat_at=now, status=RUNNING, runner=me
            )
            .on_conflict_do_nothing(index_elements=["job", "night"])
            .returning(JobRun.id)
        ).scalar()
    if won is not None:
        lease.hold(int(won))
        return Claim(int(won))
    if not take_over:
        return None
    run = _existing(job, night)
    if run is None or not lease.is_stale(run, now=now):
        return None
    done = lease.take_over(run, now=now)
    if done is None:
        return None
    return Claim(run.id, done, taken_over_from=run.runner)


def _existing(job: str, night: date) -> JobRun | None:
    run = db.session.scalar(select(JobRun).where(JobRun.job == job, JobRun.night == night))
    db.session.rollback()  # a fresh read each time; nothing is written here
    return run


def _finish(run_id: int, status: str, counts: Mapping[str, Any], errors: list[str]) -> None:
    with write_transaction(db.session):
        db.session.execute(
            update(JobRun)
            .where(JobRun.id == run_id, JobRun.runner == lease.runner_name())
            .values(
                finished_at=clock.now(),
                heartbeat_at=clock.now(),
                status=status,
                counts=json.dumps(counts, sort_keys=True),
                error="\n\n".join(errors)[:20_000] or None,
            )
            .execution_options(synchronize_session=False)
        )


# --- the steps -----------------------------------------------------------------------------
#
# A step either runs inside one write transaction, with its progress recorded in that same
# transaction (so a takeover never repeats it), or manages its own transactions and is
# idempotent (the sweep's UPDATEs find nothing twice; each mail is claimed before it is sent).


def _step_sweep(now: datetime, today: date) -> dict[str, int]:
    batch_size = int(current_app.config["PORTAL_SWEEP_BATCH_SIZE"])
    return nightly.run_sweep(now=now, today=today, batch_size=batch_size).counts


def _step_purge_tokens(now: datetime, _today: date) -> dict[str, int]:
    return {"purged": tokens.purge_expired(now)}


def _step_purge_passkey_challenges(now: datetime, _today: date) -> dict[str, int]:
    """Passkey challenges past their lifetime (``portal.second_factor.passkeys``): a new
    challenge only clears its own user's expired ones."""
    return {"purged": passkeys.purge_expired_challenges(now)}


def _step_expiry_digests(now: datetime, today: date) -> dict[str, int]:
    days = int(current_app.config["PORTAL_ACCESS_REVIEW_DAYS"])
    return notices.queue_expiry_digests(now=now, today=today, review_days=days)


def _step_send_mail(_now: datetime, _today: date) -> dict[str, int]:
    """Send the digests just queued (and whatever else is due: the mail job also runs every
    PORTAL_MAIL_RETRY_MINUTES)."""
    return mail_queue.run_due()


def _step_purge_audit(now: datetime, _today: date) -> dict[str, int]:
    """Audit events older than PORTAL_AUDIT_RETENTION_DAYS (``portal.audit.erasure``), in the
    run's transaction for this step (the permit and the delete commit together)."""
    days = current_app.config["PORTAL_AUDIT_RETENTION_DAYS"]
    return {"purged": erasure.purge_expired(db.session, now=now, retention_days=days)}


def _step_fold_page_views(now: datetime, _today: date) -> dict[str, int]:
    """Contact Us page views whose hour has passed become hourly counters and are deleted
    (``portal.helpdesk.page_views``: deflection without per-person records)."""
    return page_views.fold(now)


Step = Callable[[datetime, date], Mapping[str, int]]

#: (name, step, one transaction?) in order: the digest reads the state the sweep leaves.
STEPS: list[tuple[str, Step, bool]] = [
    ("sweep", _step_sweep, False),
    ("purge_tokens", _step_purge_tokens, True),
    ("purge_passkey_challenges", _step_purge_passkey_challenges, True),
    ("expiry_digests", _step_expiry_digests, True),
    ("mail", _step_send_mail, False),
    ("purge_audit", _step_purge_audit, True),
    ("fold_page_views", _step_fold_page_views, True),
]


@dataclass
class RunResult:
    """What one call of :func:`run_nightly` did: ``ran`` False when another process had the
    claim (then nothing else is set)."""

    night: date
    ran: bool
    status: str | None = None
    counts: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    taken_over_from: str | None = None


def _run_step(
    run_id: int, name: str, step: Step, one_transaction: bool, result: RunResult, now: datetime
) -> None:
    """Run one step and record it as done (in the step's own transaction when it has one)."""
    today = clock.local_date(now)
    if one_transaction:
        with write_transaction(db.session):
            counts = dict(step(now, today))
            lease.record_progress(run_id, {**result.counts, name: counts})
    else:
        counts = dict(step(now, today))
        with write_transaction(db.session):
            lease.record_progress(run_id, {**result.counts, name: counts})
    result.counts[name] = counts


def run_nightly(*, night: date | None = None, trigger: str = "schedule") -> RunResult:
    """Claim tonight's run (or take over one whose process died) and, if this process won,
    run every step not yet done; inside an app context.

    Never raises: a failing step is logged and recorded in the run's row (status ``failed``),
    and the scheduler stays up for the next night.
    """
    now = clock.now()
    if night is None:
        night = night_of(now, clock.configured_timezone())
    try:
        won = claim_run(JOB, night, now=now)
    except Exception:
        db.session.rollback()
        log.exception("nightly run for %s: could not claim it", night)
        return RunResult(night, ran=False, status=FAILED, errors=["claim failed"])
    if won is None:
        log.info("nightly run for %s: already claimed by another process; skipped", night)
        return RunResult(night, ran=False)
    try:
        return _run_claimed(won, night, now, trigger)
    finally:
        lease.release(won.run_id)


def _run_claimed(won: Claim, night: date, now: datetime, trigger: str) -> RunResult:
    run_id = won.run_id
    how = f"taking over from {won.taken_over_from}, " if won.taken_over_from else ""
    log.info("nightly run for %s started (%s%s, run %s)", night, how, trigger, run_id)
    result = RunResult(night, ran=True, counts=dict(won.done))
    result.taken_over_from = won.taken_over_from
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    with lease.Heartbeat(app, run_id) as heartbeat:
        for name, step, one_transaction in STEPS:
            if name in result.counts:
                continue  # done before a takeover
            if heartbeat.lost.is_set():
                result.errors.append(f"{name}: not run, the run was taken over")
                break
            try:
                _run_step(run_id, name, step, one_transaction, result, now)
            except lease.LeaseLost:
                db.session.rollback()
                log.warning("nightly run for %s: taken over by another process; stopping", night)
                return RunResult(night, ran=False, status=None)
            except Exception as exc:
                db.session.rollback()
                log.exception("nightly run for %s: step %s failed", night, name)
                result.errors.append(f"{name}: {exc!r}\n{traceback.format_exc(limit=5)}")
    result.status = FAILED if result.errors else OK
    try:
        _finish(run_id, result.status, result.counts, result.errors)
    except Exception:
        db.session.rollback()
        log.exception("nightly run for %s: could not record its outcome", night)
    log_fn = log.error if result.errors else log.info
    log_fn(
        "nightly run for %s finished: %s, counts %s%s",
        night,
        result.status,
        json.dumps(result.counts, sort_keys=True),
        f", {len(result.errors)} step(s) failed" if result.errors else "",
    )
    return result


def run_in_app(app: Flask, trigger: str = "schedule") -> RunResult | None:
    """The scheduler's entry point: :func:`run_nightly` in an app context; never raises."""
    with app.app_context():
        try:
            return run_nightly(trigger=trigger)
        except Exception:
            log.exception("nightly run failed; the scheduler stays up for the next night")
            return None
        finally:
            db.session.remove()


def send_lockout_alerts(app: Flask) -> int | None:
    """The frequent job: lockout emails that waited for an Administrator's window (R1); in an
    app context, never raises.  Safe with several schedulers (each window is claimed once)."""
    with app.app_context():
        try:
            return lockout_notices.send_waiting(now=clock.now())
        except Exception:
            db.session.rollback()
            log.exception("lockout alerts: not sent this time; the next run tries again")
            return None
        finally:
            db.session.remove()


def missed_night(app: Flask) -> date | None:
    """The latest night that should have run but has no live claim: none at all, or a run
    still "running" whose process died (see ``portal.jobs.lease``).  None: nothing missed.

    Only the latest matters: the sweep and the digest work from the state as it is now, so
    one run catches up however many nights were missed.
    """
    with app.app_context():
        try:
            now = clock.now()
            night = night_of(now, clock.configured_timezone())
            run = _existing(JOB, night)
            if run is None or lease.is_stale(run, now=now):
                return night
            return None
        finally:
            db.session.remove()


def catch_up(app: Flask) -> RunResult | None:
    """At start-up and every few minutes: run the latest night if no process ran it (after
    downtime), or finish it if the process running it died."""
    night = missed_night(app)
    if night is None:
        return None
    log.info("nightly run for %s was missed or left unfinished: catching up now", night)
    return run_in_app(app, trigger="catch-up")


# --- the scheduler -------------------------------------------------------------------------


def nightly_trigger(tz: str) -> CronTrigger:
    return CronTrigger(hour=RUN_AT.hour, minute=RUN_AT.minute, timezone=tz)


def mail_trigger(app: Flask) -> IntervalTrigger:
    """Every PORTAL_MAIL_RETRY_MINUTES: pending mail is retried within minutes, not nightly.
    Several schedulers may run it at once: each message is claimed by one sender."""
    return IntervalTrigger(minutes=max(1, int(app.config["PORTAL_MAIL_RETRY_MINUTES"])))


def configure(
    scheduler: BaseScheduler,
    app: Flask,
    *,
    trigger: BaseTrigger | None = None,
    with_catch_up: bool = True,
) -> BaseScheduler:
    """Add the nightly job, the mail retry job (every few minutes) and, unless
    ``with_catch_up`` is False, the start-up catch-up to ``scheduler``.  ``trigger`` replaces
    the 02:00 CronTrigger (tests)."""
    tz = app.config["PORTAL_TIMEZONE"]
    scheduler.add_job(
        run_in_app,
        trigger or nightly_trigger(tz),
        args=[app],
        id=CRON_JOB_ID,
        name="nightly sweep, digests and housekeeping",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=int(MISFIRE_GRACE.total_seconds()),
        replace_existing=True,
    )
    scheduler.add_job(
        mail_queue.run_due_in_app,
        mail_trigger(app),
        args=[app],
        id=MAIL_JOB_ID,
        name="send the mail that is due (retries with backoff)",
        coalesce=True,
        max_instances=1,
        replace_existing=True,
    )
    scheduler.add_job(
        send_lockout_alerts,
        IntervalTrigger(seconds=int(LOCKOUT_ALERTS_EVERY.total_seconds()), timezone=tz),
        args=[app],
        id=LOCKOUT_ALERTS_JOB_ID,
        name="lockout emails that waited for an Administrator's window",
        coalesce=True,
        max_instances=1,
        replace_existing=True,
    )
    scheduler.add_job(
        queue.run_queued_in_app,
        IntervalTrigger(seconds=max(1, int(app.config["PORTAL_JOBS_POLL_SECONDS"])), timezone=tz),
        args=[app],
        id=BACKGROUND_JOBS_ID,
        name="background jobs (bulk actions, imports) queued in the database",
        coalesce=True,
        max_instances=1,
        replace_existing=True,
    )
    if not with_catch_up:
        return scheduler
    scheduler.add_job(  # no trigger: once, as soon as the scheduler starts
        catch_up,
        args=[app],
        id=CATCH_UP_JOB_ID,
        name="catch up a missed night",
        misfire_grace_time=None,
        replace_existing=True,
    )
    scheduler.add_job(  # a run whose process died on another host: taken over after the lease
        catch_up,
        IntervalTrigger(seconds=int(CHECK_EVERY.total_seconds()), timezone=tz),
        args=[app],
        id=CHECK_JOB_ID,
        name="finish a night whose process died",
        coalesce=True,
        max_instances=1,
        replace_existing=True,
    )
    return scheduler


def start(app: Flask, *, trigger: BaseTrigger | None = None) -> BackgroundScheduler:
    """A BackgroundScheduler in this process (``make run``; PORTAL_SCHEDULER=on)."""
    tz = app.config["PORTAL_TIMEZONE"]
    scheduler = BackgroundScheduler(timezone=tz, daemon=True)
    configure(scheduler, app, trigger=trigger)
    scheduler.start()
    app.extensions[EXTENSION_KEY] = scheduler
    log.info("scheduler started: nightly run at %s %s", RUN_AT.strftime("%H:%M"), tz)
    return scheduler


def run_blocking(app: Flask) -> None:
    """``portal scheduler``: the scheduler alone in the foreground until SIGINT/SIGTERM."""
    tz = app.config["PORTAL_TIMEZONE"]
    scheduler = BlockingScheduler(timezone=tz)
    configure(scheduler, app)

    def stop(_signum: int, _frame: Any) -> None:
        log.info("scheduler stopping (SIGTERM); a run in progress finishes first")
        scheduler.shutdown(wait=True)

    signal.signal(signal.SIGTERM, stop)
    log.info("scheduler running: nightly run at %s %s", RUN_AT.strftime("%H:%M"), tz)
    scheduler.start()


def wanted(config: Mapping[str, Any], environ: Mapping[str, str], command: Any) -> bool:
    """Should the factory start a scheduler in this process?

    Only when PORTAL_SCHEDULER is on and the process serves requests: under gunicorn (or any
    WSGI server), or ``flask run`` in the reloader's child (never its parent, which only
    watches files).  Never for the other CLI commands (``db upgrade``, ``portal sweep`` …),
    which would otherwise start a run and exit half-way.  ``command`` is the current click
    context's command, or None outside the CLI.
    """
    if not config.get("PORTAL_SCHEDULER"):
        return False
    if environ.get("FLASK_RUN_FROM_CLI") != "true":
        return True  # a WSGI server imported app.py
    if command is None or getattr(command.command, "name", None) != "run":
        return False
    if environ.get("WERKZEUG_RUN_MAIN") == "true":
        return True  # the reloader's child serves
    reload = command.params.get("reload")
    if reload is None:
        reload = bool(config.get("DEBUG"))
    return not reload

"""Starting the nightly jobs (SPEC §7).  A minimal in-process scheduler for ``make run``.

Not started at import or by the factory unless PORTAL_SCHEDULER is on.  The cross-process
run claim, catch-up after downtime and the ``portal scheduler`` command belong to the jobs
issue; until then run a single process with the scheduler on.
"""

from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from flask import Flask

from portal import clock
from portal.db import write_transaction
from portal.extensions import db
from portal.jobs import nightly

log = logging.getLogger(__name__)


def run_sweep(app: Flask) -> None:
    with app.app_context():
        try:
            with write_transaction(db.session):
                counts = nightly.sweep(now=clock.now(), today=clock.today())
            log.info("nightly sweep done: %s", counts)
        except Exception:
            db.session.rollback()
            log.exception("nightly sweep failed; the scheduler stays up for the next night")
        finally:
            db.session.remove()


def start(app: Flask) -> BackgroundScheduler:
    tz = app.config["PORTAL_TIMEZONE"]
    scheduler = BackgroundScheduler(timezone=tz)
    scheduler.add_job(
        run_sweep,
        CronTrigger(hour=2, minute=0, timezone=tz),
        args=[app],
        id="nightly-sweep",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=6 * 3600,
    )
    scheduler.start()
    app.extensions["portal.scheduler"] = scheduler
    log.info("scheduler started: nightly sweep at 02:00 %s", tz)
    return scheduler

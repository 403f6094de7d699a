"""The scheduler process killed (SIGKILL) in the middle of the nightly sweep, then restarted:
the run is not left "running", and the night completes exactly once (issue 10, point 8).

A real ``flask --app app portal scheduler`` catches up tonight at its start on a few thousand
users due for expiry, in small batches (``PORTAL_SWEEP_BATCH_SIZE``) so that the sweep is
seen half-done; it is killed there without any chance to clean up, and a new scheduler is
started on the same host.  The new one sees that the run's process is gone, takes the run
over and finishes the steps that are left.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select

from portal import clock
from portal.accounts import notices
from portal.accounts import rules
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.audit.models import AuditEvent
from portal.db import write_transaction
from portal.extensions import db
from portal.jobs import runner as nightly_runner
from portal.jobs.runs import JobRun
from portal.mail_queue import QueuedMail
from tests.concurrency.test_login_concurrency import LOGIN
from tests.factories import PASSWORD
from tests.factories import make_org
from tests.factories import make_user
from tests.faults.processes import figure
from tests.faults.processes import kill_hard
from tests.faults.processes import scheduler
from tests.faults.processes import wait_until
from tests.faults.traffic import Traffic
from tests.live_server import gunicorn

pytestmark = pytest.mark.slow

DUE = 4000
CLIENTS = 2
BATCH = 20
#: Kill once this many users are disabled: a few batches in, hundreds of batches to go.
KILL_AFTER = 3 * BATCH


def _load_due_users(app: Flask, n: int) -> int:
    """``n`` Claims Handlers past their expiry date in one organisation (one executemany),
    plus an Administrator and a user expiring within the digest's window; the org's id."""
    org = make_org("Killed Sweep Ltd")
    now = clock.now()
    today = clock.local_date(now)
    make_user(org, user_id="killed.admin", profile=Profile.ADMINISTRATOR)
    make_user(org, user_id="killed.soon", expires_on=today + timedelta(days=7))
    template = make_user(org, user_id="killed.template", expires_on=today - timedelta(days=1))
    rows = [
        {
            "user_id": f"due.user{i:05d}",
            "user_id_key": f"due.user{i:05d}",
            "full_name": f"Due User {i}",
            "full_name_key": f"due user {i}",
            "email": f"due.user{i:05d}@example.com",
            "email_key": f"due.user{i:05d}@example.com",
            "profile": Profile.CLAIMS_HANDLER.value,
            "organisation_id": org.id,
            "password_hash": template.password_hash,
            "enabled": True,
            "active": True,
            "failed_attempts": 0,
            "access_granted_at": now,
            "last_use_at": now,
            "expires_on": today - timedelta(days=1 + i % 30),
            "must_change_password": False,
            "session_token": f"{i:032x}",
            "created_at": now,
        }
        for i in range(1, n)  # the template is the n-th
    ]
    with write_transaction(db.session):
        db.session.execute(insert(User), rows)
    return org.id


def _count(statement: object) -> int:
    value = db.session.scalar(statement)  # type: ignore[call-overload]
    db.session.rollback()  # the next read sees what the scheduler committed since
    return int(value or 0)


def _disabled() -> int:
    return _count(
        select(func.count(User.id)).where(User.disabled_reason == rules.Reason.EXPIRY.value)
    )


def _runs() -> list[JobRun]:
    runs = list(db.session.scalars(select(JobRun).order_by(JobRun.id)))
    db.session.rollback()
    return runs


def test_a_scheduler_killed_mid_sweep_is_taken_over_and_the_night_completes_once(
    app: Flask, runner: FlaskCliRunner, database_url: str, tmp_path: Path
) -> None:
    _load_due_users(app, DUE)
    org = make_org("Logging In Ltd")
    clients = [make_user(org, user_id=f"sweep.client{i}").user_id for i in range(CLIENTS)]
    db.session.rollback()
    env = {
        "PORTAL_SWEEP_BATCH_SIZE": str(BATCH),
        "PORTAL_MAIL_OUTBOX": str(tmp_path / "outbox"),
    }
    log_path = tmp_path / "scheduler.log"

    web_log = tmp_path / "gunicorn.log"
    with (
        gunicorn(database_url, web_log, workers=2, threads=4, ready_path=LOGIN) as base,
        Traffic(base, clients, PASSWORD) as traffic,
    ):
        with scheduler(database_url, log_path, env) as first:
            wait_until(
                lambda: _disabled() >= KILL_AFTER or first.poll() is not None,
                timeout=120,
                what="the first scheduler's sweep to be under way",
            )
            assert first.poll() is None, log_path.read_text()
            kill_hard(first)
        done_when_killed = _disabled()
        [run] = _runs()
        assert 0 < done_when_killed < DUE, f"not killed mid-sweep ({done_when_killed} of {DUE})"
        assert run.status == "running"  # what `portal jobs` showed for ever before the lease
        killed_runner = run.runner
        shown = runner.invoke(args=["portal", "jobs"])
        db.session.rollback()
        assert "running" in shown.output
        assert "its process is gone" in shown.output

        with scheduler(database_url, log_path, env) as second:
            wait_until(
                lambda: _runs()[0].status != "running" or second.poll() is not None,
                timeout=120,
                what="the restarted scheduler to finish the night",
            )
            assert second.poll() is None, log_path.read_text()
        traffic.wait_for_more(CLIENTS, timeout=120, what="logins after the takeover")
    assert not traffic.errors, traffic.errors[:3]
    assert not traffic.server_errors, dict(traffic.statuses)
    assert traffic.logins == traffic.rounds

    log_text = log_path.read_text()
    [run] = _runs()  # still one run for the night: completed once, by the second process
    assert run.status == "ok", log_text
    assert run.finished_at is not None
    assert run.runner != killed_runner
    assert f"taking over from {killed_runner}" in log_text
    assert "Traceback" not in log_text
    counts = json.loads(run.counts or "{}")
    assert set(counts) == {name for name, _step, _one in nightly_runner.STEPS}
    # The new owner counted only its own part: together, every due user once.
    assert done_when_killed + counts["sweep"]["expiry"] == DUE
    assert _disabled() == DUE
    events = _count(
        select(func.count(AuditEvent.id)).where(
            AuditEvent.kind == rules.EventKind.SYSTEM_DISABLED.value
        )
    )
    distinct = _count(
        select(func.count(func.distinct(AuditEvent.subject_id))).where(
            AuditEvent.kind == rules.EventKind.SYSTEM_DISABLED.value
        )
    )
    assert events == distinct == DUE  # nothing lost, nothing twice
    digests = _count(
        select(func.count(QueuedMail.id)).where(QueuedMail.purpose == notices.DIGEST_PURPOSE)
    )
    assert digests == 1  # the Administrator's expiry digest, sent once
    figure(
        database_url,
        f"scheduler killed mid-sweep: {done_when_killed} of {DUE} disabled at the kill, "
        f"{DUE} after the takeover, {events} audit events, {digests} digest, 1 run 'ok'; "
        f"{traffic.rounds} login rounds meanwhile, 0 5xx",
    )

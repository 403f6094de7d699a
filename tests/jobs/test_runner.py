"""The nightly run: the claim (exactly once across schedulers with their own engines, on
SQLite and PostgreSQL), catch-up after downtime, failures, the night's date, and when a
process starts a scheduler at all."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from flask import Flask
from sqlalchemy import select

from portal import clock
from portal import create_app
from portal.accounts import rules
from portal.db import write_transaction
from portal.extensions import db
from portal.jobs import nightly
from portal.jobs import runner
from portal.jobs.runs import JobRun
from tests.factories import make_user
from tests.factories import refresh
from tests.live_server import REPO
from tests.live_server import _server_env

LONDON = "Europe/London"


def runs() -> list[JobRun]:
    db.session.rollback()
    return list(db.session.scalars(select(JobRun).order_by(JobRun.id)))


def wait_until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


@pytest.fixture
def results(monkeypatch: pytest.MonkeyPatch) -> list[runner.RunResult]:
    """Every ``run_nightly`` result, whichever scheduler thread ran it."""
    seen: list[runner.RunResult] = []
    lock = threading.Lock()
    real = runner.run_nightly

    def recording(**kwargs: Any) -> runner.RunResult:
        result = real(**kwargs)
        with lock:
            seen.append(result)
        return result

    monkeypatch.setattr(runner, "run_nightly", recording)
    return seen


@pytest.fixture
def sweeps(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the sweeps that really run (each lasts a little, so that two would overlap)."""
    ran: list[str] = []
    real = nightly.run_sweep

    def counting(**kwargs: Any) -> nightly.SweepReport:
        ran.append(threading.current_thread().name)
        time.sleep(0.3)
        return real(**kwargs)

    monkeypatch.setattr(nightly, "run_sweep", counting)
    return ran


@pytest.fixture
def second_app(settings: dict[str, Any]) -> Iterator[Flask]:
    """Another app on the same database, with an engine (a connection pool) of its own: a
    second process or host, as far as the database can tell."""
    other = create_app(settings)
    yield other
    with other.app_context():
        db.session.remove()
        db.engine.dispose()


# --- the claim ------------------------------------------------------------------------------


def test_the_first_claim_wins_and_the_second_gets_nothing(app: Flask) -> None:
    night = date(2026, 6, 15)
    now = clock.now()
    first = runner.claim("nightly", night, now=now)
    assert first is not None
    assert runner.claim("nightly", night, now=now) is None
    assert runner.claim("other", night, now=now) is not None
    assert runner.claim("nightly", night + timedelta(days=1), now=now) is not None
    [row] = [r for r in runs() if r.id == first]
    assert (row.status, row.finished_at) == ("running", None)


@pytest.mark.slow  # two schedulers firing for real
def test_two_schedulers_firing_together_run_one_sweep(
    app: Flask,
    second_app: Flask,
    results: list[runner.RunResult],
    sweeps: list[str],
) -> None:
    user = make_user(created_at=clock.now() - rules.INACTIVITY - timedelta(days=1))
    db.session.rollback()
    at = datetime.now(UTC) + timedelta(seconds=1.5)
    schedulers: list[BackgroundScheduler] = []
    for application in (app, second_app):
        scheduler = BackgroundScheduler(timezone=LONDON)
        runner.configure(scheduler, application, trigger=DateTrigger(at), with_catch_up=False)
        schedulers.append(scheduler)
    try:
        for scheduler in schedulers:
            scheduler.start()
        wait_until(lambda: len(results) == 2)
    finally:
        for scheduler in schedulers:
            scheduler.shutdown(wait=True)

    assert sorted(r.ran for r in results) == [False, True]
    assert len(sweeps) == 1
    [run] = runs()
    assert (run.job, run.status) == ("nightly", "ok")
    assert json.loads(run.counts or "{}")["sweep"] == {"expiry": 0, "inactivity": 1}
    assert refresh(user).disabled_reason == "inactivity"


def test_catch_up_after_three_nights_down_runs_once(
    app: Flask, results: list[runner.RunResult], sweeps: list[str]
) -> None:
    now = clock.now()
    tonight = runner.night_of(now, LONDON)
    with write_transaction(db.session):
        db.session.add(
            JobRun(
                job="nightly",
                night=tonight - timedelta(days=3),
                started_at=now - timedelta(days=3),
                finished_at=now - timedelta(days=3),
                status="ok",
                runner="elsewhere:1",
            )
        )
    user = make_user(created_at=now - rules.INACTIVITY - timedelta(days=1))
    db.session.rollback()
    scheduler = runner.start(app, trigger=CronTrigger(year=2999, timezone=LONDON))
    try:
        wait_until(lambda: len(results) == 1)
    finally:
        scheduler.shutdown(wait=True)
    assert results[0].ran
    assert results[0].night == tonight
    assert len(sweeps) == 1
    assert [r.night for r in runs()] == [tonight - timedelta(days=3), tonight]
    assert refresh(user).disabled_reason == "inactivity"
    assert runner.catch_up(app) is None  # once: tonight is done now
    assert len(sweeps) == 1


def test_nothing_to_catch_up_when_tonight_already_ran(app: Flask) -> None:
    assert runner.missed_night(app) == runner.night_of(clock.now(), LONDON)
    assert runner.run_nightly().ran
    assert runner.missed_night(app) is None
    assert runner.catch_up(app) is None


def test_a_failing_step_is_recorded_and_the_scheduler_stays_up(
    app: Flask, monkeypatch: pytest.MonkeyPatch, results: list[runner.RunResult]
) -> None:
    def broken(**_kwargs: Any) -> nightly.SweepReport:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(nightly, "run_sweep", broken)
    scheduler = runner.start(app, trigger=CronTrigger(second="*", timezone=LONDON))
    try:
        wait_until(lambda: len(results) >= 3)  # the catch-up, then the trigger, again and again
        assert scheduler.running
        assert scheduler.get_job(runner.CRON_JOB_ID) is not None
    finally:
        scheduler.shutdown(wait=True)
    first, *later = results
    assert (first.ran, first.status) == (True, "failed")
    assert "the disk is on fire" in first.errors[0]
    assert all(not r.ran for r in later)  # the night is claimed: later firings skip
    [run] = runs()
    assert run.status == "failed"
    assert run.error is not None
    assert "the disk is on fire" in run.error
    assert run.finished_at is not None
    counts = json.loads(run.counts or "{}")
    assert "sweep" not in counts
    assert counts["purge_tokens"] == {"purged": 0}  # the other steps still ran


def test_run_in_app_never_raises(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    def exploding(**_kwargs: Any) -> runner.RunResult:
        raise RuntimeError("boom")

    monkeypatch.setattr(runner, "run_nightly", exploding)
    assert runner.run_in_app(app) is None


# --- the night ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "night"),
    [
        (datetime(2026, 6, 15, 0, 59, 59, tzinfo=UTC), date(2026, 6, 14)),  # 01:59:59 BST
        (datetime(2026, 6, 15, 1, 0, 0, tzinfo=UTC), date(2026, 6, 15)),  # 02:00 BST
        (datetime(2026, 1, 15, 1, 59, 59, tzinfo=UTC), date(2026, 1, 14)),  # 01:59:59 GMT
        (datetime(2026, 1, 15, 2, 0, 0, tzinfo=UTC), date(2026, 1, 15)),  # 02:00 GMT
        # 29 Mar 2026: 01:00 GMT becomes 02:00 BST, so 02:00 comes at 01:00 UTC.
        (datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC), date(2026, 3, 28)),
        (datetime(2026, 3, 29, 1, 0, 0, tzinfo=UTC), date(2026, 3, 29)),
        # 25 Oct 2026: 02:00 BST becomes 01:00 GMT; 02:00 GMT comes at 02:00 UTC.
        (datetime(2026, 10, 25, 1, 30, 0, tzinfo=UTC), date(2026, 10, 24)),  # 01:30 GMT
        (datetime(2026, 10, 25, 2, 0, 0, tzinfo=UTC), date(2026, 10, 25)),
    ],
)
def test_night_of(moment: datetime, night: date) -> None:
    assert runner.night_of(moment, LONDON) == night


def test_the_cron_trigger_fires_at_two_in_the_portal_time_zone() -> None:
    trigger = runner.nightly_trigger(LONDON)
    after = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
    fire = trigger.get_next_fire_time(None, after)
    assert fire is not None
    assert fire.astimezone(UTC) == datetime(2026, 6, 16, 1, 0, tzinfo=UTC)


# --- which processes start a scheduler -------------------------------------------------------


def _cli(name: str, **params: Any) -> SimpleNamespace:
    return SimpleNamespace(command=SimpleNamespace(name=name), params=params)


@pytest.mark.parametrize(
    ("config", "environ", "command", "expected"),
    [
        ({"PORTAL_SCHEDULER": False}, {}, None, False),
        ({"PORTAL_SCHEDULER": True}, {}, None, True),  # gunicorn
        ({"PORTAL_SCHEDULER": True}, {"FLASK_RUN_FROM_CLI": "true"}, _cli("upgrade"), False),
        ({"PORTAL_SCHEDULER": True}, {"FLASK_RUN_FROM_CLI": "true"}, _cli("sweep"), False),
        ({"PORTAL_SCHEDULER": True}, {"FLASK_RUN_FROM_CLI": "true"}, None, False),
        (
            {"PORTAL_SCHEDULER": True},
            {"FLASK_RUN_FROM_CLI": "true"},
            _cli("run", reload=False),
            True,
        ),
        # the reloader's parent only watches files; its child serves
        (
            {"PORTAL_SCHEDULER": True},
            {"FLASK_RUN_FROM_CLI": "true"},
            _cli("run", reload=True),
            False,
        ),
        (
            {"PORTAL_SCHEDULER": True},
            {"FLASK_RUN_FROM_CLI": "true", "WERKZEUG_RUN_MAIN": "true"},
            _cli("run", reload=True),
            True,
        ),
        (
            {"PORTAL_SCHEDULER": True, "DEBUG": True},
            {"FLASK_RUN_FROM_CLI": "true"},
            _cli("run", reload=None),
            False,
        ),
    ],
)
def test_wanted(
    config: dict[str, Any], environ: dict[str, str], command: Any, expected: bool
) -> None:
    assert runner.wanted(config, environ, command) is expected


def test_the_factory_starts_it_only_when_asked(settings: dict[str, Any]) -> None:
    off = create_app(settings)
    assert runner.EXTENSION_KEY not in off.extensions
    on = create_app({**settings, "PORTAL_SCHEDULER": True})
    scheduler = on.extensions[runner.EXTENSION_KEY]
    try:
        assert scheduler.running
        job = scheduler.get_job(runner.CRON_JOB_ID)
        assert (job.coalesce, job.max_instances) == (True, 1)
        assert job.misfire_grace_time >= 3600
        assert str(job.trigger.timezone) == LONDON
    finally:
        scheduler.shutdown(wait=True)
        with on.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.mark.slow  # a new Python process
def test_importing_portal_starts_no_thread() -> None:
    code = (
        "import threading, portal, portal.jobs.runner, portal.jobs.nightly;"
        "print(sorted(t.name for t in threading.enumerate()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert "APScheduler" not in out
    assert out.strip() == "['MainThread']"


# --- `portal scheduler` in real processes ----------------------------------------------------


@pytest.mark.slow
def test_two_scheduler_processes_starting_together_run_the_night_once(
    app: Flask, database_url: str, tmp_path: Path
) -> None:
    """Two real ``flask --app app portal scheduler`` processes on one database start at the
    same moment: both try to catch up tonight; exactly one runs it.  SIGTERM stops them."""
    user = make_user(created_at=clock.now() - rules.INACTIVITY - timedelta(days=1))
    db.session.rollback()
    flask = Path(sys.executable).parent / "flask"
    env = _server_env(database_url)
    logs = [tmp_path / f"scheduler{i}.log" for i in (1, 2)]
    procs = []
    for log_path in logs:
        with log_path.open("wb") as log:
            procs.append(
                subprocess.Popen(
                    [str(flask), "--app", "app", "portal", "scheduler"],
                    cwd=REPO,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    try:
        wait_until(lambda: any(r.status == "ok" for r in runs()), timeout=60)
        time.sleep(1.0)  # let the other one finish deciding
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(timeout=30) for proc in procs]
    text_ = "\n".join(path.read_text() for path in logs)
    assert codes == [0, 0], text_
    assert text_.count("Scheduler stopped.") == 2, text_
    assert text_.count(" started (catch-up") == 1, text_
    assert "Traceback" not in text_
    [run] = runs()
    assert run.status == "ok"
    assert json.loads(run.counts or "{}")["sweep"] == {"expiry": 0, "inactivity": 1}
    assert refresh(user).disabled_reason == "inactivity"

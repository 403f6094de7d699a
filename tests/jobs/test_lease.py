"""The lease on a nightly run (portal.jobs.lease): a run left "running" by a process that died
is taken over once and finished without repeating its finished steps; a live run is left
alone until its heartbeat is older than the lease; a process that lost its run stops."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from datetime import date
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update

from portal import clock
from portal.accounts import notices
from portal.accounts.models import Profile
from portal.db import write_transaction
from portal.extensions import db
from portal.jobs import lease
from portal.jobs import nightly
from portal.jobs import runner
from portal.jobs.runs import JobRun
from portal.mail_queue import QueuedMail
from tests.factories import make_org
from tests.factories import make_user

LONDON = "Europe/London"


def _dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _tonight() -> date:
    return runner.night_of(clock.now(), LONDON)


def _left_running(runner_name: str, *, counts: dict[str, Any] | None = None) -> int:
    """A run of tonight left "running" by ``runner_name``, heartbeat now."""
    now = clock.now()
    with write_transaction(db.session):
        run = JobRun(
            job=runner.JOB,
            night=_tonight(),
            started_at=now,
            heartbeat_at=now,
            status="running",
            runner=runner_name,
            counts=json.dumps(counts) if counts is not None else None,
        )
        db.session.add(run)
    return run.id


def _runs() -> list[JobRun]:
    db.session.rollback()
    return list(db.session.scalars(select(JobRun).order_by(JobRun.id)))


def test_a_run_whose_process_died_on_this_host_is_taken_over_at_once(app: Flask) -> None:
    dead = f"{socket.gethostname()}:{_dead_pid()}"
    _left_running(dead)
    assert runner.missed_night(app) == _tonight()
    result = runner.run_nightly()
    assert (result.ran, result.status, result.taken_over_from) == (True, "ok", dead)
    [run] = _runs()
    assert run.status == "ok"
    assert run.runner == lease.runner_name()
    assert set(json.loads(run.counts or "{}")) == {name for name, _s, _t in runner.STEPS}
    assert runner.missed_night(app) is None  # finished: nothing left to catch up


def test_a_live_run_elsewhere_is_left_alone_until_its_lease_ends(app: Flask) -> None:
    _left_running("another-host:4242")
    with clock.frozen(clock.now()):
        clock.advance(lease.LEASE - timedelta(seconds=1))
        assert runner.missed_night(app) is None
        assert not runner.run_nightly().ran
        clock.advance(timedelta(seconds=2))
        assert runner.missed_night(app) == _tonight()
        result = runner.run_nightly()
    assert (result.ran, result.taken_over_from) == (True, "another-host:4242")
    [run] = _runs()
    assert run.status == "ok"


def test_this_process_does_not_take_over_its_own_run_while_it_runs(app: Flask) -> None:
    won = runner.claim_run(runner.JOB, _tonight(), now=clock.now())
    assert won is not None
    run_id = won.run_id
    [run] = _runs()
    assert not lease.is_stale(run, now=clock.now())
    assert runner.missed_night(app) is None
    lease.release(run_id)  # as after a restart with the same host name and pid
    assert lease.is_stale(run, now=clock.now())


def test_steps_finished_before_the_takeover_are_not_repeated(app: Flask) -> None:
    org = make_org()
    make_user(org, profile=Profile.ADMINISTRATOR)
    make_user(org, expires_on=clock.today() + timedelta(days=3))  # makes a digest
    done = {"sweep": {"expiry": 0, "inactivity": 0}, "purge_tokens": {"purged": 0}}
    done["expiry_digests"] = {"digests": 1}
    _left_running(f"{socket.gethostname()}:{_dead_pid()}", counts=done)
    result = runner.run_nightly()
    assert result.ran
    digests = db.session.scalar(
        select(func.count(QueuedMail.id)).where(QueuedMail.purpose == notices.DIGEST_PURPOSE)
    )
    assert digests == 0  # the dead process had queued (and recorded) it already
    [run] = _runs()
    counts = json.loads(run.counts or "{}")
    assert counts["expiry_digests"] == {"digests": 1}
    assert "mail" in counts


def test_of_two_processes_taking_over_the_same_run_one_wins(app: Flask) -> None:
    _left_running(f"{socket.gethostname()}:{_dead_pid()}")
    [seen] = _runs()
    db.session.expunge(seen)  # both processes read the same stale row
    assert lease.is_stale(seen, now=clock.now())
    assert lease.take_over(seen, now=clock.now()) is not None
    assert lease.take_over(seen, now=clock.now()) is None  # the row changed under it
    lease.release(seen.id)


def test_a_process_whose_run_was_taken_over_stops(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = nightly.run_sweep

    def presumed_dead(**kwargs: Any) -> nightly.SweepReport:
        with write_transaction(db.session):  # meanwhile another host took the run over
            db.session.execute(update(JobRun).values(runner="another-host:1"))
        return real(**kwargs)

    monkeypatch.setattr(nightly, "run_sweep", presumed_dead)
    result = runner.run_nightly()
    assert not result.ran
    [run] = _runs()
    assert (run.status, run.runner, run.counts) == ("running", "another-host:1", None)


def test_the_heartbeat_renews_the_lease_and_notices_a_takeover(app: Flask) -> None:
    won = runner.claim_run(runner.JOB, _tonight(), now=clock.now())
    assert won is not None
    run_id = won.run_id
    first_beat = _runs()[0].heartbeat_at
    try:
        with lease.Heartbeat(app, run_id, every=timedelta(milliseconds=10)) as beat:
            deadline = time.monotonic() + 30
            while _runs()[0].heartbeat_at == first_beat:
                assert time.monotonic() < deadline, "no heartbeat"
                time.sleep(0.01)
            with write_transaction(db.session):
                db.session.execute(update(JobRun).values(runner="another-host:1"))
            assert beat.lost.wait(timeout=30)
    finally:
        lease.release(run_id)


def test_portal_jobs_shows_a_running_run_s_heartbeat_and_whether_it_is_stale(app: Flask) -> None:
    _left_running("another-host:4242")
    cli = app.test_cli_runner()
    alive = cli.invoke(args=["portal", "jobs"]).output
    assert "running" in alive
    assert "last heartbeat" in alive
    assert "(alive)" in alive
    with clock.frozen(clock.now() + lease.LEASE + timedelta(seconds=1)):
        stale = cli.invoke(args=["portal", "jobs"]).output
    assert "its process is gone: the next scheduler check finishes it" in stale

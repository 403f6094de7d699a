"""The lease on a nightly run: a run whose process died is taken over and finished once.

A claimed run renews its ``heartbeat_at`` while it works (a :class:`Heartbeat` thread, and
every progress record).  Another process may take a run over when it is still "running" and

- its heartbeat is older than :data:`LEASE` (the process died or hung, on any host), or
- it was claimed on this host by a process that no longer exists (a scheduler killed and
  restarted: no need to wait for the lease), or by this very process but is not running here
  (a container restarted with the same host name and pid).

A takeover is one compare-and-set ``UPDATE … WHERE runner = <old> AND heartbeat_at = <old>``:
of two processes that look at the same stale run, exactly one wins, and a process that was
only slow finds out at its next heartbeat or progress record (its ``WHERE runner = <me>``
matches nothing) and stops.  The counts of the steps already done are in the row (each
recorded in the same transaction as the step's own writes where the step has one), so the
new owner runs only the steps that are left.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import update

from portal import clock
from portal.db import rowcount
from portal.db import write_transaction
from portal.extensions import db
from portal.jobs.runs import RUNNING
from portal.jobs.runs import JobRun

log = logging.getLogger(__name__)

#: A running claim not renewed for this long is taken over by another process.
LEASE = timedelta(minutes=10)
#: The running process renews its heartbeat this often (well inside the lease).
HEARTBEAT_EVERY = timedelta(minutes=1)

_active: set[int] = set()  # ids of the runs this process is running now
_active_lock = threading.Lock()


class LeaseLost(RuntimeError):
    """Another process took this run over (this one was presumed dead): stop working on it."""


def runner_name() -> str:
    """This process, as recorded in ``job_runs.runner``: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


def hold(run_id: int) -> None:
    """This process now runs ``run_id``."""
    with _active_lock:
        _active.add(run_id)


def release(run_id: int) -> None:
    with _active_lock:
        _active.discard(run_id)


def _held_here(run_id: int) -> bool:
    with _active_lock:
        return run_id in _active


def pid_alive(pid: int) -> bool:
    """Does a process with this id exist on this host?  (A zombie counts as alive.)"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, as another user
    return True


def last_sign_of_life(run: JobRun) -> datetime:
    return run.heartbeat_at or run.started_at


def is_stale(run: JobRun, *, now: datetime) -> bool:
    """May this process take ``run`` over?  Only a "running" run, never one it runs itself."""
    if run.status != RUNNING:
        return False
    host, _, pid_text = run.runner.rpartition(":")
    if host == socket.gethostname() and pid_text.isdigit():
        pid = int(pid_text)
        if pid == os.getpid():
            return not _held_here(run.id)
        if not pid_alive(pid):
            return True
    return last_sign_of_life(run) < now - LEASE


def take_over(run: JobRun, *, now: datetime) -> dict[str, Any] | None:
    """Take the stale ``run`` over (compare-and-set); the counts of its finished steps when this
    process won, None when another process changed the row first."""
    me = runner_name()
    with write_transaction(db.session):
        counts = db.session.execute(
            update(JobRun)
            .where(
                JobRun.id == run.id,
                JobRun.status == RUNNING,
                JobRun.runner == run.runner,
                JobRun.heartbeat_at.is_(None)
                if run.heartbeat_at is None
                else JobRun.heartbeat_at == run.heartbeat_at,
            )
            .values(runner=me, heartbeat_at=now)
            .returning(JobRun.counts)
            .execution_options(synchronize_session=False)
        ).one_or_none()
    if counts is None:
        return None
    hold(run.id)
    log.warning(
        "nightly run %s for %s: taken over from %s (last sign of life %s)",
        run.id,
        run.night,
        run.runner,
        last_sign_of_life(run).isoformat(timespec="seconds"),
    )
    done: dict[str, Any] = json.loads(counts[0] or "{}")
    return done


def record_progress(run_id: int, counts: Mapping[str, Any]) -> None:
    """Inside the caller's write transaction: store the counts of the steps done so far and
    renew the heartbeat; :class:`LeaseLost` (rolling the caller's transaction back) when the
    run is no longer this process's."""
    owned = rowcount(
        db.session.execute(
            update(JobRun)
            .where(JobRun.id == run_id, JobRun.runner == runner_name(), JobRun.status == RUNNING)
            .values(counts=json.dumps(counts, sort_keys=True), heartbeat_at=clock.now())
            .execution_options(synchronize_session=False)
        )
    )
    if not owned:
        raise LeaseLost(f"run {run_id} was taken over by another process")


@dataclass
class Heartbeat:
    """A thread renewing the run's heartbeat every :data:`HEARTBEAT_EVERY` until stopped;
    ``lost`` is set when the run turned out to be another process's."""

    app: Flask
    run_id: int
    every: timedelta = HEARTBEAT_EVERY

    def __post_init__(self) -> None:
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._me = runner_name()  # the thread's own pid is the process's
        self._thread = threading.Thread(
            target=self._run, name=f"portal-heartbeat-{self.run_id}", daemon=True
        )

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.every.total_seconds()):
            with self.app.app_context():
                try:
                    self._beat()
                except Exception as exc:  # the database may be away for a moment: try later
                    log.warning("nightly run %s: heartbeat not recorded: %r", self.run_id, exc)
                finally:
                    db.session.remove()
            if self.lost.is_set():
                return

    def _beat(self) -> None:
        with write_transaction(db.session):
            owned = rowcount(
                db.session.execute(
                    update(JobRun)
                    .where(JobRun.id == self.run_id, JobRun.runner == self._me)
                    .where(JobRun.status == RUNNING)
                    .values(heartbeat_at=clock.now())
                    .execution_options(synchronize_session=False)
                )
            )
        if not owned:
            log.warning("nightly run %s: taken over by another process", self.run_id)
            self.lost.set()

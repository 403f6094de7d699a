"""The database briefly gone under login traffic, against a real gunicorn (2 workers): no 500,
a 503 at worst while it is gone, then normal answers without a restart (issue 10, point 8).

PostgreSQL: every connection of the test database is killed mid-traffic, several times
(``pg_terminate_backend``).  SQLite: another process holds the write lock longer than the
busy timeout (a backup or a migration holding the file), so logins that must write cannot.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.engine import make_url

from portal.accounts import rules
from portal.audit.models import AuditEvent
from portal.extensions import db
from tests.concurrency.test_login_concurrency import LOGIN
from tests.factories import PASSWORD
from tests.factories import make_org
from tests.factories import make_user
from tests.faults.processes import figure
from tests.faults.processes import wait_until
from tests.faults.traffic import Traffic
from tests.faults.traffic import login_round
from tests.live_server import gunicorn

pytestmark = pytest.mark.slow

CLIENTS = 4
KILLS = 4
#: Login rounds that must all succeed, one after the other, once the fault is over.
AFTER = 20

KILL_ALL = text(
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


def _users() -> list[str]:
    org = make_org("Outage Ltd")
    uids = [make_user(org, user_id=f"outage.user{i}").user_id for i in range(CLIENTS)]
    db.session.rollback()
    return uids


def _logins_recorded() -> int:
    count = db.session.scalar(
        select(func.count(AuditEvent.id)).where(
            AuditEvent.kind == rules.EventKind.LOGIN_SUCCEEDED.value
        )
    )
    db.session.rollback()
    return int(count or 0)


def _kill_postgres_connections(database_url: str, traffic: Traffic) -> int:
    """Kill every connection of the database ``KILLS`` times, with traffic in between."""
    engine = create_engine(database_url)
    killed = 0
    try:
        for round_ in range(KILLS):
            with engine.connect() as conn:
                killed += int(conn.execute(KILL_ALL).scalar() or 0)
            traffic.wait_for_more(CLIENTS, timeout=120, what=f"traffic after kill {round_ + 1}")
    finally:
        engine.dispose()
    return killed


@contextmanager
def _sqlite_write_lock(database_url: str) -> Iterator[None]:
    """Hold SQLite's write lock from another connection for the block."""
    path = make_url(database_url).database
    assert path
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield
        holder.execute("ROLLBACK")
    finally:
        holder.close()


def test_database_briefly_gone_mid_traffic(app: Flask, database_url: str, tmp_path: Path) -> None:
    users = _users()
    log_path = tmp_path / "gunicorn.log"
    postgres = database_url.startswith("postgresql")
    with gunicorn(database_url, log_path, workers=2, threads=4, ready_path=LOGIN) as base:
        with Traffic(base, users, PASSWORD) as traffic:
            traffic.wait_for_more(2 * CLIENTS, timeout=120, what="traffic before the fault")
            if postgres:
                killed = _kill_postgres_connections(database_url, traffic)
                assert killed > 0
                fault = f"PostgreSQL connections killed {KILLS} times ({killed} connections)"
            else:
                with _sqlite_write_lock(database_url):
                    wait_until(
                        lambda: bool(traffic.server_errors),
                        timeout=120,
                        what="a login refused while the database is locked",
                    )
                fault = "SQLite write lock held past the busy timeout"
            traffic.stop()
        during = dict(traffic.statuses)
        after = [login_round(base, users[i % CLIENTS], PASSWORD) for i in range(AFTER)]
    log_text = log_path.read_text()  # gunicorn() has checked that it holds no traceback

    assert not traffic.errors, traffic.errors[:3]
    assert set(traffic.server_errors) <= {503}, during  # never a 500
    assert all(o.logged_in for o in after), [o.statuses for o in after]  # no restart needed
    unavailable = during.get(503, 0)
    assert log_text.count("database unavailable on ") == unavailable  # one line each
    if not postgres:
        assert unavailable > 0
    # Nothing lost: every login that was answered as done is in the audit trail.
    answered = during.get(302, 0) + AFTER
    recorded = _logins_recorded()
    assert answered <= recorded <= answered + unavailable
    figure(
        database_url,
        f"database gone ({fault}): {traffic.rounds} login rounds, {sum(during.values())} "
        f"requests, {unavailable} 503, 0 500, {AFTER}/{AFTER} logins after it, "
        f"0 logins lost ({recorded - answered} committed but answered 503)",
    )

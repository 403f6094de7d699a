"""The database layer: SQLite connection settings (DB-01, DB-02), the CHECK constraints that make
the three states of docs/rules.md §2 the only storable ones, case-insensitive User IDs (LK-06), the
append-only audit trail (R9), the atomic R1 counter (LK-04) and UTC timestamps.

Every test that takes ``app`` runs on a migrated SQLite *file* and, when
PORTAL_TEST_DATABASE_URL is set, on PostgreSQL too.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import inspect
from sqlalchemy import select
from sqlalchemy import table
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from portal import clock
from portal.accounts import rules
from portal.accounts import service
from portal.accounts.models import Organisation
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.audit.models import AppendOnlyError
from portal.audit.models import AuditEvent
from portal.db import SQLITE_BUSY_TIMEOUT_MS
from portal.db import is_outage
from portal.db import write_transaction
from portal.extensions import db
from tests.factories import apply
from tests.factories import lock_out
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import refresh
from tests.factories import remove_access

PORTAL_SOURCE = Path(__file__).resolve().parent.parent / "portal"


def _require_sqlite() -> None:
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite connection settings")


def _release(user: User) -> int:
    """The user's primary key, with the main session's transaction ended (the read that
    reloads an expired attribute would otherwise stay open while other connections work)."""
    pk = user.id
    db.session.commit()
    return pk


def _run_threads(targets: list[Any], timeout: float = 60) -> None:
    threads = [threading.Thread(target=t, daemon=True) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a worker thread hung"


# --------------------------------------------------------------------------------------------
# DB-01 / DB-02: SQLite connection settings


def test_sqlite_fresh_connection_pragmas(app: Flask) -> None:
    _require_sqlite()
    db.engine.dispose()  # the next connection is a new one, set up by the connect event
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()

        def pragma(name: str) -> Any:
            cur.execute(f"PRAGMA {name}")
            return cur.fetchone()[0]

        assert str(pragma("journal_mode")).lower() == "wal"
        assert pragma("busy_timeout") >= 5000
        assert pragma("busy_timeout") == SQLITE_BUSY_TIMEOUT_MS
        assert pragma("foreign_keys") == 1
        assert pragma("synchronous") == 1  # NORMAL
        # pysqlite's own BEGIN handling is off, so SQLAlchemy's begin event decides (DB-02)
        assert raw.driver_connection.isolation_level is None
        cur.close()
    finally:
        raw.close()


def _other_can_write(other: sqlite3.Connection) -> bool:
    """Can ``other`` (a connection of its own, ``timeout=0``) take the write lock now?"""
    try:
        other.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc):
            raise
        return False
    other.execute("ROLLBACK")
    return True


def test_sqlite_write_transactions_begin_immediate(app: Flask) -> None:
    """DB-02: ``write_transaction`` takes the write lock at BEGIN, before its first read; a plain
    read transaction is deferred (in WAL mode readers never block the writer)."""
    _require_sqlite()
    other = sqlite3.connect(db.engine.url.database, timeout=0, isolation_level=None)
    try:
        db.session.execute(text("SELECT count(*) FROM users")).scalar_one()
        assert _other_can_write(other)  # a read transaction holds no write lock
        db.session.commit()
        with write_transaction(db.session):
            db.session.execute(text("SELECT count(*) FROM users")).scalar_one()
            assert not _other_can_write(other)  # a write transaction holds it from its first read
        assert _other_can_write(other)  # and releases it at the end
    finally:
        other.close()


def test_sqlite_write_after_a_read_begins_immediate_on_the_same_connection(app: Flask) -> None:
    """DB-02 as a request runs it: the user is read in a read transaction, then the write.
    ``write_transaction`` ends the read and begins IMMEDIATE on the same connection (one pool
    checkout, not two); the block sees what another connection committed in between, holds
    the write lock until the end, and is rolled back on error."""
    _require_sqlite()
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE scratch_note (id INTEGER PRIMARY KEY, note TEXT)"))
        conn.execute(text("INSERT INTO scratch_note (id, note) VALUES (1, 'first')"))
    other = sqlite3.connect(db.engine.url.database, timeout=0, isolation_level=None)
    checkouts: list[int] = []

    def counted(*_args: Any) -> None:
        checkouts.append(1)

    def note() -> str:
        return str(other.execute("SELECT note FROM scratch_note WHERE id = 1").fetchone()[0])

    event.listen(db.engine, "checkout", counted)
    try:
        db.session.execute(text("SELECT note FROM scratch_note")).all()  # the read transaction
        other.execute("UPDATE scratch_note SET note = 'meanwhile' WHERE id = 1")
        with write_transaction(db.session):
            seen = db.session.execute(text("SELECT note FROM scratch_note")).scalar_one()
            assert seen == "meanwhile"  # a new snapshot, not the read transaction's
            assert not _other_can_write(other)
            db.session.execute(text("UPDATE scratch_note SET note = 'written' WHERE id = 1"))
        assert checkouts == [1]
        assert _other_can_write(other)
        assert note() == "written"

        def refused_write() -> None:
            with write_transaction(db.session):
                db.session.execute(text("UPDATE scratch_note SET note = 'lost' WHERE id = 1"))
                raise RuntimeError("refused")

        db.session.execute(text("SELECT note FROM scratch_note")).all()
        with pytest.raises(RuntimeError, match="refused"):
            refused_write()
        assert note() == "written"
        assert _other_can_write(other)
    finally:
        event.remove(db.engine, "checkout", counted)
        other.close()


def test_sqlite_write_after_a_read_past_busy_timeout_is_an_outage(app: Flask) -> None:
    """Another process holds the write lock past busy_timeout when a request that has read
    begins its write: an outage (the 503 page), the block never runs, and the session is left
    with no transaction, usable again (not running statements outside any transaction)."""
    _require_sqlite()
    other = sqlite3.connect(db.engine.url.database, timeout=0, isolation_level=None)
    driver = db.session.connection().connection.driver_connection  # the read transaction
    driver.execute("PRAGMA busy_timeout = 50")
    try:
        db.session.execute(text("SELECT count(*) FROM users")).scalar_one()
        other.execute("BEGIN IMMEDIATE")
        ran = False
        with pytest.raises(OperationalError) as caught, write_transaction(db.session):
            ran = True
        assert not ran
        assert is_outage(caught.value)
        assert not db.session().in_transaction()
        other.execute("ROLLBACK")
        with write_transaction(db.session):
            db.session.execute(text("SELECT count(*) FROM users")).scalar_one()
            assert not _other_can_write(other)
    finally:
        driver.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        other.close()


def _traced(statements: list[str]) -> Any:
    """The session's driver connection, each statement it runs (COMMIT and BEGIN, sent on the
    driver, included) appended to ``statements``."""
    driver = db.session.connection().connection.driver_connection
    driver.set_trace_callback(statements.append)
    return driver


def test_sqlite_write_in_a_transaction_just_begun_takes_the_lock_once(app: Flask) -> None:
    """A session whose transaction has no connection yet (begun, nothing read): the block's
    connection begins IMMEDIATE and is used as it is (no COMMIT and second BEGIN IMMEDIATE,
    which would wait for the lock twice)."""
    _require_sqlite()
    seen: list[str] = []
    driver = _traced(seen)
    try:
        db.session.commit()  # the connection goes back to the pool (the only one: reused)
        db.session.begin()
        with write_transaction(db.session):
            db.session.execute(text("SELECT count(*) FROM users")).scalar_one()
        assert driver is db.session.connection().connection.driver_connection
    finally:
        driver.set_trace_callback(None)
    began = seen[seen.index("BEGIN IMMEDIATE") :]
    assert began[:2] == ["BEGIN IMMEDIATE", "SELECT count(*) FROM users"]
    assert seen.count("BEGIN IMMEDIATE") == 1


def test_sqlite_write_after_a_read_that_fails_at_commit_is_rolled_back(app: Flask) -> None:
    """A write refused at its commit (the last flush; here a second organisation of the same
    name) is rolled back: the session is usable again, nothing was stored."""
    _require_sqlite()
    org = make_org()
    db.session.execute(text("SELECT count(*) FROM users")).scalar_one()  # the read transaction
    with pytest.raises(IntegrityError), write_transaction(db.session):
        db.session.add(Organisation(name=org.name))
    assert not db.session().in_transaction()
    count = select(func.count()).select_from(Organisation).where(Organisation.name == org.name)
    assert db.session.execute(count).scalar_one() == 1


def test_sqlite_write_after_a_flush_outside_keeps_the_session_true(app: Flask) -> None:
    """Rows flushed before the block (outside any write transaction) are committed before it,
    as before: a block that then fails leaves them stored and in the session, not undone in
    the session while ``COMMIT`` had stored them."""
    _require_sqlite()
    early = Organisation(name=f"Flushed early {time.monotonic_ns()}")
    db.session.add(early)
    db.session.flush()

    def refused_write() -> None:
        with write_transaction(db.session):
            db.session.execute(text("SELECT count(*) FROM users")).scalar_one()
            raise RuntimeError("refused")

    with pytest.raises(RuntimeError, match="refused"):
        refused_write()
    assert inspect(early).persistent
    db.session.commit()
    count = select(func.count()).select_from(Organisation).where(Organisation.id == early.id)
    assert db.session.execute(count).scalar_one() == 1


def test_sqlite_concurrent_read_then_write_is_never_locked_and_exact(app: Flask) -> None:
    """DB-02: 8 threads × 50 read-then-write transactions on the file database.

    Each ``write_transaction`` reads the counter and writes back the value it read plus one, in
    Python, through its own session and pooled connection.  With deferred transactions the
    read-to-write upgrade gets SQLITE_BUSY at once ("database is locked", busy_timeout ignored)
    and updates are lost; with BEGIN IMMEDIATE the transactions queue on busy_timeout and the
    count is exact.
    """
    _require_sqlite()
    threads, per_thread = 8, 50
    engine = db.engine
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE scratch_counter (id INTEGER PRIMARY KEY, value INTEGER)"))
        conn.execute(text("INSERT INTO scratch_counter (id, value) VALUES (1, 0)"))
    errors: list[str] = []
    start = threading.Barrier(threads)

    def work() -> None:
        start.wait()
        with Session(engine) as session:
            for _ in range(per_thread):
                try:
                    with write_transaction(session):
                        value = session.execute(
                            text("SELECT value FROM scratch_counter WHERE id = 1")
                        ).scalar_one()
                        session.execute(
                            text("UPDATE scratch_counter SET value = :v WHERE id = 1"),
                            {"v": value + 1},
                        )
                except OperationalError as exc:  # "database is locked" would land here
                    errors.append(str(exc.orig))

    _run_threads([work] * threads)
    with engine.connect() as conn:
        final = conn.execute(text("SELECT value FROM scratch_counter WHERE id = 1")).scalar_one()
    assert errors == []
    assert final == threads * per_thread


# --------------------------------------------------------------------------------------------
# CHECK constraints: only the three states of docs/rules.md §2 can be stored


CHECK_CASES = [
    # (id, profile of the user, SET clause, parameters, the constraint that must refuse it)
    ("enabled-but-not-active", Profile.CLAIMS_HANDLER, "active = :f", {}, "active_if_enabled"),
    (
        "system-disabled-without-reason",
        Profile.CLAIMS_HANDLER,
        "enabled = :f",
        {},
        "reason_iff_system_disabled",
    ),
    (
        "reason-while-has-access",
        Profile.CLAIMS_HANDLER,
        "disabled_reason = 'lockout'",
        {},
        "reason_iff_system_disabled",
    ),
    (
        "reason-while-access-removed",
        Profile.CLAIMS_HANDLER,
        "enabled = :f, active = :f, disabled_reason = 'lockout'",
        {},
        "reason_iff_system_disabled",
    ),
    (
        "unknown-reason",
        Profile.CLAIMS_HANDLER,
        "enabled = :f, disabled_reason = 'bored'",
        {},
        "disabled_reason_known",
    ),
    ("unknown-profile", Profile.HELPDESK, "profile = 'superuser'", {}, "profile_known"),
    (
        "failed-attempts-6",
        Profile.CLAIMS_HANDLER,
        "enabled = :f, disabled_reason = 'lockout', failed_attempts = 6",
        {},
        "failed_attempts_range",
    ),
    (
        "failed-attempts-negative",
        Profile.CLAIMS_HANDLER,
        "failed_attempts = -1",
        {},
        "failed_attempts_range",
    ),
    (
        "count-without-access-negative",
        Profile.CLAIMS_HANDLER,
        "enabled = :f, disabled_reason = 'lockout', failed_attempts_without_access = -1",
        {},
        "failed_attempts_without_access_range",
    ),
    (
        "count-without-access-while-enabled",
        Profile.CLAIMS_HANDLER,
        "failed_attempts_without_access = 1",
        {},
        "no_count_without_access_while_enabled",
    ),
    (
        "administrator-without-organisation",
        Profile.ADMINISTRATOR,
        "organisation_id = NULL",
        {},
        "organisation_iff_member",
    ),
    (
        "claims-handler-without-organisation",
        Profile.CLAIMS_HANDLER,
        "organisation_id = NULL",
        {},
        "organisation_iff_member",
    ),
    (
        "helpdesk-with-organisation",
        Profile.HELPDESK,
        "organisation_id = :org",
        {"org": True},
        "organisation_iff_member",
    ),
    (
        "portal-team-with-organisation",
        Profile.PORTAL_TEAM,
        "organisation_id = :org",
        {"org": True},
        "organisation_iff_member",
    ),
]


@pytest.mark.parametrize(
    ("profile", "set_clause", "params", "constraint"),
    [pytest.param(*case[1:], id=case[0]) for case in CHECK_CASES],
)
def test_check_constraints_refuse_invalid_states(
    app: Flask, profile: Profile, set_clause: str, params: dict[str, Any], constraint: str
) -> None:
    user = make_user(profile=profile)
    values: dict[str, Any] = {"f": False, "id": _release(user)}
    if params.get("org"):
        values["org"] = make_org().id
    with pytest.raises(IntegrityError) as excinfo:
        db.session.execute(text(f"UPDATE users SET {set_clause} WHERE id = :id"), values)  # noqa: S608
    db.session.rollback()
    assert constraint in str(excinfo.value.orig)
    fresh = refresh(user)
    assert (fresh.enabled, fresh.active, fresh.disabled_reason, fresh.failed_attempts) == (
        True,
        True,
        None,
        0,
    )


def test_check_constraints_refuse_enabled_with_lockout_count(app: Flask) -> None:
    """``rules.is_valid`` says an enabled account has fewer than LOCKOUT_AFTER failures, and
    its docstring says the database enforces the same invariants; so must the schema."""
    user = make_user()
    pk = _release(user)
    with pytest.raises(IntegrityError):
        db.session.execute(
            text("UPDATE users SET failed_attempts = :n WHERE id = :id"),
            {"n": rules.LOCKOUT_AFTER, "id": pk},
        )
    db.session.rollback()


def test_check_constraints_accept_each_valid_state(app: Flask) -> None:
    """The same raw UPDATEs succeed for the three real states (the refusals above are real)."""
    user = make_user()
    pk = _release(user)
    valid = [
        "enabled = :f, disabled_reason = 'lockout', failed_attempts = 5",  # system-disabled
        "enabled = :f, active = :f, disabled_reason = NULL",  # access removed
        "enabled = :t, active = :t, disabled_reason = NULL, failed_attempts = 4",  # has access
    ]
    for set_clause in valid:
        db.session.execute(
            text(f"UPDATE users SET {set_clause} WHERE id = :id"),  # noqa: S608
            {"f": False, "t": True, "id": pk},
        )
        db.session.commit()
    assert refresh(user).failed_attempts == 4


# --------------------------------------------------------------------------------------------
# User IDs: unique case-insensitively, trimmed (LK-06)


def test_user_ids_are_unique_ignoring_case_and_spaces(app: Flask) -> None:
    org = make_org()
    bob = make_user(org, user_id="Bob")
    assert (bob.user_id, bob.user_id_key) == ("Bob", "bob")
    with pytest.raises(service.AccountError, match="already taken"):
        service.create_user(
            user_id=" bob ",
            full_name="Another Bob",
            email="bob2@example.com",
            profile=Profile.CLAIMS_HANDLER,
            organisation=org,
            expires_on=None,
            actor=None,
            now=clock.now(),
        )
    db.session.rollback()
    for variant in ("bob", " BOB", "bOb\t"):
        found = service.find_user(variant)
        assert found is not None
        assert found.id == bob.id
    assert db.session.scalar(select(func.count()).select_from(User)) == 1


def test_user_id_key_is_unique_in_the_database(app: Flask) -> None:
    """A direct insert that bypasses the service cannot create a second "bob"."""
    bob = make_user(user_id="Bob", profile=Profile.HELPDESK)
    now = clock.now()
    row = {
        "user_id": "BOB",
        "user_id_key": "bob",
        "full_name": "Direct Bob",
        "full_name_key": "direct bob",
        "email": "direct@example.com",
        "email_key": "direct@example.com",
        "profile": "helpdesk",
        "organisation_id": None,
        "password_hash": bob.password_hash,
        "enabled": True,
        "active": True,
        "disabled_reason": None,
        "failed_attempts": 0,
        "access_granted_at": now,
        "last_use_at": now,
        "must_change_password": False,
        "session_token": "x" * 32,
        "created_at": now,
    }
    db.session.commit()
    with pytest.raises(IntegrityError):
        db.session.execute(insert(User.__table__).values(**row))
    db.session.rollback()
    # the same row with another key goes in, so the refusal above was the unique key's
    db.session.execute(insert(User.__table__).values(**{**row, "user_id_key": "bob2"}))
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(User)) == 2


# --------------------------------------------------------------------------------------------
# R9: the audit trail is append-only, in the database and in the ORM


def _audit_rows() -> list[tuple[int, str]]:
    return list(db.session.execute(select(AuditEvent.id, AuditEvent.kind).order_by(AuditEvent.id)))


def test_audit_events_cannot_be_updated_or_deleted_in_sql(app: Flask) -> None:
    make_user()
    before = _audit_rows()
    assert len(before) >= 2  # organisation_created, user_created
    db.session.commit()
    for statement in ("UPDATE audit_events SET kind = 'x'", "DELETE FROM audit_events"):
        with pytest.raises(DBAPIError, match="append-only"):
            db.session.execute(text(statement))
        db.session.rollback()
    assert _audit_rows() == before


def test_audit_events_can_still_be_appended(app: Flask) -> None:
    user = make_user()
    count = len(_audit_rows())
    service.log_out(user, now=clock.now())
    db.session.commit()
    assert len(_audit_rows()) == count + 1


def test_audit_events_cannot_be_changed_through_the_orm(app: Flask) -> None:
    make_user()
    before = _audit_rows()
    event = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)).first()
    assert event is not None
    event.kind = "x"
    with pytest.raises(AppendOnlyError):
        db.session.flush()
    db.session.rollback()

    event = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)).first()
    db.session.delete(event)
    with pytest.raises(AppendOnlyError):
        db.session.flush()
    db.session.rollback()
    assert _audit_rows() == before


# --------------------------------------------------------------------------------------------
# LK-04: the atomic counter SQL agrees with the pure rules, and is exact under concurrency


def _columns(user: User) -> tuple[int, bool, bool, str | None]:
    fresh = refresh(user)
    return fresh.failed_attempts, fresh.enabled, fresh.active, fresh.disabled_reason


def _with_failures(user: User, n: int) -> User:
    """``n`` wrong passwords through the rules (the way the product reaches that state)."""
    for _ in range(n):
        apply(
            user,
            rules.login_attempt(
                user.to_state(), password_ok=False, now=clock.now(), today=clock.today()
            ),
        )
    return user


@pytest.mark.parametrize("start", range(rules.LOCKOUT_AFTER))
def test_count_failure_sql_agrees_with_rules(app: Flask, start: int) -> None:
    user = _with_failures(make_user(), start)
    assert user.failed_attempts == start
    token_before = user.session_token
    expected = rules.login_attempt(
        user.to_state(), password_ok=False, now=clock.now(), today=clock.today()
    ).state

    counted = service._count_failure(user)
    db.session.commit()

    assert counted == (expected.failures, expected.enabled)
    assert _columns(user) == (
        expected.failures,
        expected.enabled,
        expected.active,
        expected.reason.value if expected.reason else None,
    )
    fresh = refresh(user)
    assert rules.is_valid(fresh.to_state())
    # a lockout ends every session (D-5), exactly as User.apply does for the rules' decision
    assert (fresh.session_token != token_before) == (not expected.enabled)


@pytest.mark.parametrize("how", ["lockout", "inactivity", "removed"])
def test_count_failure_changes_nothing_without_access(app: Flask, how: str) -> None:
    user = make_user()
    if how == "lockout":
        lock_out(user)
    elif how == "inactivity":
        later = clock.now() + rules.INACTIVITY + timedelta(seconds=1)
        apply(user, rules.sweep(user.to_state(), now=later, today=clock.local_date(later)))
    else:
        remove_access(user)
    before = (*_columns(user), refresh(user).session_token)
    assert before[1] is False

    assert service._count_failure(refresh(user)) is None
    db.session.commit()
    assert (*_columns(user), refresh(user).session_token) == before


@pytest.mark.parametrize("start", [0, 1, rules.GUESSES_WITHOUT_ACCESS, 40])
def test_count_failure_without_access_sql_agrees_with_rules(app: Flask, start: int) -> None:
    """R1 as amended: the atomic UPDATE is ``rules.counted_without_access``, and it changes
    nothing else (no lock event, no session ended, the lockout's count stays 5)."""
    user = lock_out(make_user())
    for _ in range(start):
        assert service._count_failure_without_access(refresh(user)) is not None
        db.session.commit()
    fresh = refresh(user)
    assert fresh.failed_attempts_without_access == start
    before = (*_columns(user), fresh.session_token)
    expected = rules.counted_without_access(fresh.to_state())

    assert service._count_failure_without_access(refresh(user)) == start + 1
    db.session.commit()

    assert refresh(user).to_state() == expected
    assert (*_columns(user), refresh(user).session_token) == before


def test_count_failure_without_access_is_capped(app: Flask) -> None:
    user = lock_out(make_user())
    pk = _release(user)
    db.session.execute(
        text("UPDATE users SET failed_attempts_without_access = :n WHERE id = :id"),
        {"n": rules.WITHOUT_ACCESS_COUNT_CAP, "id": pk},
    )
    db.session.commit()
    assert service._count_failure_without_access(refresh(user)) == rules.WITHOUT_ACCESS_COUNT_CAP
    db.session.commit()


def test_count_failure_without_access_changes_nothing_with_access(app: Flask) -> None:
    user = make_user()
    assert service._count_failure_without_access(refresh(user)) is None
    db.session.commit()
    assert refresh(user).failed_attempts_without_access == 0


def test_two_sessions_that_both_read_3_end_at_5_and_locked(app: Flask) -> None:
    """LK-04's interleaving: two connections both read failed_attempts=3, then both run the
    increment, each in a ``write_transaction`` as the login does.  The second waits for the
    first to commit (PostgreSQL: the row lock, re-evaluated under READ COMMITTED; SQLite:
    BEGIN IMMEDIATE) and counts from 4, not from the 3 it read."""
    user = _with_failures(make_user(), 3)
    pk = _release(user)
    both_read = threading.Barrier(2, timeout=30)
    first_updated = threading.Event()
    seen: dict[str, Any] = {}
    errors: list[BaseException] = []

    def session(name: str) -> None:
        try:
            with app.app_context():  # its own scoped session, so its own connection
                me = db.session.get(User, pk)
                assert me is not None
                seen[f"{name}_read"] = me.failed_attempts
                both_read.wait()
                if name == "second":
                    assert first_updated.wait(30)
                with write_transaction(db.session):  # ends the read transaction first
                    seen[name] = service._count_failure(me)
                    seen[f"{name}_returned_at"] = time.monotonic()
                    if name == "first":
                        first_updated.set()
                        time.sleep(0.3)  # the second increment must still be waiting after this
                        seen["first_commit_at"] = time.monotonic()
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)
            both_read.abort()
            first_updated.set()

    _run_threads([lambda: session("first"), lambda: session("second")])
    assert errors == []
    assert seen["first_read"] == seen["second_read"] == 3
    assert seen["first"] == (4, True)
    assert seen["second"] == (5, False)
    assert seen["second_returned_at"] >= seen["first_commit_at"]
    assert _columns(user) == (5, False, True, "lockout")


# --------------------------------------------------------------------------------------------
# Timestamps: aware UTC in and out, naive refused


def test_timestamps_round_trip_as_aware_utc(app: Flask) -> None:
    plus_two = timezone(timedelta(hours=2))
    created = datetime(2026, 7, 1, 14, 30, 15, 123456, tzinfo=plus_two)
    user = make_user(created_at=created)
    fresh = refresh(user)
    for value in (
        fresh.created_at,
        fresh.access_granted_at,
        fresh.last_use_at,
        fresh.password_changed_at,
    ):
        assert value is not None
        assert value.tzinfo is UTC
    assert fresh.created_at == created
    assert fresh.created_at.hour == 12  # the same instant, in UTC
    assert fresh.created_at.microsecond == 123456
    if db.engine.dialect.name == "sqlite":
        stored = db.session.execute(
            text("SELECT created_at FROM users WHERE id = :id"), {"id": fresh.id}
        ).scalar_one()
        assert str(stored).startswith("2026-07-01 12:30:15")  # stored as UTC
    db.session.commit()


def test_naive_datetimes_are_refused(app: Flask) -> None:
    user = make_user()
    before = refresh(user).password_changed_at
    user.password_changed_at = datetime(2026, 7, 1, 12, 0)  # naive: the point of the test
    with pytest.raises(StatementError, match="naive datetime"):
        db.session.commit()
    db.session.rollback()
    assert refresh(user).password_changed_at == before


# --------------------------------------------------------------------------------------------
# LK-06 / LK-04 lint: no read-modify-write of the failure counter anywhere in portal/

#: ``user.failed_attempts += 1`` and ``x.failed_attempts = x.failed_attempts + 1`` (an instance,
#: lower-case name); ``User.failed_attempts + 1`` is a SQL expression and is what R1 must use.
#: The same for R1's count of wrong passwords without access (``failed_attempts_without_access``).
_COUNTER = r"failed_attempts(?:_without_access)?"
READ_MODIFY_WRITE = [
    re.compile(rf"\b{_COUNTER}\s*\+="),
    re.compile(rf"\b{_COUNTER}\s*=\s*(?:self|[a-z_]\w*)\.{_COUNTER}\s*\+"),
    re.compile(rf"\b{_COUNTER}\s*=\s*(?:self|[a-z_]\w*)\.{_COUNTER}\s*-"),
    re.compile(rf"setattr\([^)]*['\"]{_COUNTER}['\"][^)]*\+\s*1"),
]


def _read_modify_writes(source: str) -> list[str]:
    return [
        line.strip()
        for line in source.splitlines()
        if any(p.search(line) for p in READ_MODIFY_WRITE)
    ]


def test_lint_patterns_catch_read_modify_write() -> None:
    bad = [
        "user.failed_attempts += 1",
        "    self.failed_attempts+=1",
        "user.failed_attempts = user.failed_attempts + 1",
        "u.failed_attempts=u.failed_attempts+1",
        "setattr(user, 'failed_attempts', user.failed_attempts + 1)",
        "user.failed_attempts_without_access += 1",
        "u.failed_attempts_without_access = u.failed_attempts_without_access + 1",
    ]
    good = [
        "failed_attempts=User.failed_attempts + 1,",
        "will_lock = User.failed_attempts + 1 >= rules.LOCKOUT_AFTER",
        "self.failed_attempts = state.failures",
    ]
    assert _read_modify_writes("\n".join(bad)) == [line.strip() for line in bad]
    assert _read_modify_writes("\n".join(good)) == []


def test_no_read_modify_write_of_the_failure_counter() -> None:
    files = sorted(PORTAL_SOURCE.rglob("*.py"))
    assert len(files) > 10
    found = {
        str(path.relative_to(PORTAL_SOURCE.parent)): hits
        for path in files
        if (hits := _read_modify_writes(path.read_text(encoding="utf-8")))
    }
    assert found == {}


def test_the_migrations_build_exactly_the_models(app: Flask) -> None:
    """What ``flask db upgrade`` builds equals the models (no forgotten migration)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from portal.db import include_name

    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_name": include_name, "compare_type": True}
        )
        differences = compare_metadata(context, db.metadata)
    assert differences == []


def test_every_migration_goes_down_and_up(app: Flask) -> None:
    """``flask db downgrade base`` then ``upgrade`` rebuilds exactly the models (SQLite: the
    shared PostgreSQL database stays as the session's migration left it)."""
    import flask_migrate
    from sqlalchemy import inspect

    if db.engine.dialect.name != "sqlite":
        pytest.skip("down and up on SQLite only")
    db.session.remove()
    flask_migrate.downgrade(revision="base")
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
    flask_migrate.upgrade()
    test_the_migrations_build_exactly_the_models(app)


def test_the_sqlite_table_copies_keep_rows_that_reference_the_table(app: Flask) -> None:
    """A migration that changes a CHECK on SQLite copies the table (drop, then rename): with
    helpdesk requests, their timeline events and screenshots present, every row and the
    error-text index survive down and up again."""
    import flask_migrate

    from tests.helpdesk_factories import make_request
    from tests.helpdesk_factories import png_bytes

    if db.engine.dialect.name != "sqlite":
        pytest.skip("the table copy happens on SQLite only")
    req = make_request(error_message="Your password has expired", screenshot=png_bytes())
    make_request(status="resolved")

    def counts() -> tuple[int, ...]:
        with db.engine.connect() as conn:
            return tuple(
                conn.execute(select(func.count()).select_from(table(name))).scalar_one()
                for name in ("helpdesk_requests", "helpdesk_request_events", "helpdesk_screenshots")
            )

    before = counts()
    assert before == (2, 2, 1)
    db.session.remove()
    flask_migrate.downgrade(revision="0015_audit_retention")
    assert counts() == before
    flask_migrate.upgrade()
    assert counts() == before
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA foreign_key_check")).all() == []
        assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
        found = conn.execute(
            text("SELECT rowid FROM helpdesk_requests_fts WHERE helpdesk_requests_fts MATCH :q"),
            {"q": '"password has exp"'},
        ).all()
    assert [row[0] for row in found] == [req.id]
    test_the_migrations_build_exactly_the_models(app)

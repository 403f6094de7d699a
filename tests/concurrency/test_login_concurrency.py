"""Logins under concurrent load against a REAL server (docs/security.md LK-03, LK-05, TM-03, DB-04).

Each test starts ``gunicorn -w 2 --threads 8`` on the test's database (a SQLite WAL *file*, and
PostgreSQL when PORTAL_TEST_DATABASE_URL is set), creates its users through the ``app``
fixture, then fires parallel POSTs at ``/portal/login`` with CSRF on, exactly as browsers
would.  State is read back from the database afterwards.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask
from sqlalchemy import func
from sqlalchemy import select

from portal import clock
from portal.accounts import rules
from portal.accounts.models import User
from portal.audit.models import AuditEvent
from portal.db import write_transaction
from portal.extensions import db
from tests.factories import PASSWORD
from tests.factories import make_user
from tests.helpers import csrf_token_in
from tests.live_server import gunicorn

pytestmark = pytest.mark.slow

WRONG = "definitely not the password"
LOGIN = "/portal/login"
HOME = "/portal/"
PARALLEL_WRONG = 50
LOCKOUT_RUNS = 5
MIXED_RUNS = 6
REQUEST_TIMEOUT = 60.0

_CODE = re.compile(r"Code (LOGIN-\d+)")

T = TypeVar("T")


# --- the server ----------------------------------------------------------------------------


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A real gunicorn (2 workers × 8 threads) on the test's database; yields its base URL."""
    with gunicorn(
        database_url, tmp_path / "gunicorn.log", workers=2, threads=8, ready_path=LOGIN
    ) as base:
        yield base


# --- clients -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    location: str
    codes: tuple[str, ...]


def _reply(response: requests.Response) -> Reply:
    return Reply(
        response.status_code,
        response.headers.get("Location", ""),
        tuple(_CODE.findall(response.text)),
    )


def open_login(http: requests.Session, base: str) -> str:
    """GET the login page with ``http``: sets its session cookie; returns the CSRF token."""
    page = http.get(base + LOGIN, timeout=REQUEST_TIMEOUT)
    assert page.status_code == 200
    assert http.cookies, "the login page set no session cookie"
    return csrf_token_in(page.text)


def post_login(http: requests.Session, base: str, user_id: str, password: str, token: str) -> Reply:
    response = http.post(
        base + LOGIN,
        data={"user_id": user_id, "password": password, "csrf_token": token},
        allow_redirects=False,
        timeout=REQUEST_TIMEOUT,
    )
    return _reply(response)


def post_login_with_cookie(
    base: str, cookie: str, user_id: str, password: str, token: str
) -> Reply:
    """One POST on its own connection, carrying a shared session cookie (no shared Session)."""
    with requests.Session() as http:
        response = http.post(
            base + LOGIN,
            data={"user_id": user_id, "password": password, "csrf_token": token},
            headers={"Cookie": cookie},
            allow_redirects=False,
            timeout=REQUEST_TIMEOUT,
        )
        return _reply(response)


def run_together(tasks: list[Callable[[], T]]) -> list[T]:
    """Run every task on its own thread, all released at once by a barrier."""
    barrier = threading.Barrier(len(tasks), timeout=30)

    def go(task: Callable[[], T]) -> T:
        barrier.wait()
        return task()

    with ThreadPoolExecutor(max_workers=len(tasks)) as pool:
        futures = [pool.submit(go, task) for task in tasks]
        return [f.result(timeout=REQUEST_TIMEOUT * 2) for f in futures]


def is_home(location: str) -> bool:
    return urlsplit(location).path == HOME


def is_login(location: str) -> bool:
    return urlsplit(location).path == LOGIN


# --- the database, read from this process --------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    enabled: bool
    reason: str | None
    failed: int
    events: dict[str, int]
    #: R1 as amended: wrong passwords tried since the account lost access.
    failed_without_access: int = 0


def snapshot(pk: int) -> Snapshot:
    """The user's row and its audit event counts, read fresh; ends the transaction at once
    (on SQLite every transaction takes the write lock, which the server must not wait for)."""
    db.session.expire_all()
    row = db.session.get(User, pk)
    assert row is not None
    counts = db.session.execute(
        select(AuditEvent.kind, func.count())
        .where(AuditEvent.subject_id == pk)
        .group_by(AuditEvent.kind)
    ).all()
    shot = Snapshot(
        row.enabled,
        row.disabled_reason,
        row.failed_attempts,
        {kind: n for kind, n in counts},
        row.failed_attempts_without_access,
    )
    db.session.rollback()
    return shot


def events_since(after: Snapshot, before: Snapshot, kind: str) -> int:
    return after.events.get(kind, 0) - before.events.get(kind, 0)


def event_kinds_after(pk: int, first_id: int) -> list[tuple[int, str]]:
    rows = db.session.execute(
        select(AuditEvent.id, AuditEvent.kind)
        .where(AuditEvent.subject_id == pk, AuditEvent.id > first_id)
        .order_by(AuditEvent.id)
    ).all()
    db.session.rollback()
    return [(i, k) for i, k in rows]


def last_event_id() -> int:
    value = db.session.scalar(select(func.coalesce(func.max(AuditEvent.id), 0)))
    db.session.rollback()
    return int(value or 0)


def new_user() -> tuple[User, int, str]:
    """A Claims Handler, its primary key and User ID.  The transaction that reading them began
    is ended here: a test must never hold one open while the server works (SQLite)."""
    user = make_user()
    pk, uid = user.id, user.user_id
    db.session.rollback()
    return user, pk, uid


def current(user: User) -> User:
    """Inside ``write_transaction``: the user as the database has it now.  The write
    transaction began IMMEDIATE, so this read and the write after it wait their turn behind the
    server's writers (under busy_timeout); a plain read-then-write transaction could instead be
    refused at once on SQLite ("database is locked") when the server wrote in between."""
    db.session.expire_all()
    fresh = db.session.get(User, user.id)
    assert fresh is not None
    return fresh


def _reenable(fresh: User) -> None:
    decision = rules.reenable(fresh.to_state(), now=clock.now(), today=clock.today())
    fresh.apply(decision.state)


def reenable(user: User) -> None:
    """Give the user access back through the real rules (R6); commits."""
    with write_transaction(db.session):
        _reenable(current(user))


def reset(user: User) -> None:
    """Access and no failures, through the rules: re-enable (R6) when disabled; otherwise
    R6 is no change and leaves the count, so clear it as a right password does (R1)."""
    with write_transaction(db.session):
        fresh = current(user)
        _reenable(fresh)
        if fresh.failed_attempts:
            decision = rules.login_attempt(
                fresh.to_state(), password_ok=True, now=clock.now(), today=clock.today()
            )
            fresh.apply(decision.state)


def add_failures(user: User, count: int) -> None:
    """``count`` wrong passwords through the rules (like ``factories.lock_out``); commits."""
    with write_transaction(db.session):
        fresh = current(user)
        for _ in range(count):
            decision = rules.login_attempt(
                fresh.to_state(), password_ok=False, now=clock.now(), today=clock.today()
            )
            fresh.apply(decision.state)


def assert_no_5xx(replies: list[Reply]) -> None:
    bad = [r for r in replies if r.status >= 500]
    assert not bad, f"{len(bad)} of {len(replies)} responses were 5xx: {bad[:3]}"


# --- the tests -----------------------------------------------------------------------------


def test_parallel_wrong_passwords_lock_exactly_once(app: Flask, server: str) -> None:
    """LK-03: 50 parallel wrong passwords, several runs: counter 5, one lock, generic pages;
    the 45 after the lockout counted exactly (atomically) without access, so the right
    password then gets the generic answer too (R1 as amended)."""
    user, pk, uid = new_user()
    for run in range(LOCKOUT_RUNS):
        before = snapshot(pk)
        assert (before.enabled, before.failed) == (True, 0), f"run {run}: not reset: {before}"
        with requests.Session() as http:
            token = open_login(http, server)
            cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.get_dict().items())

        replies = run_together(
            [
                functools.partial(post_login_with_cookie, server, cookie, uid, WRONG, token)
                for _ in range(PARALLEL_WRONG)
            ]
        )

        assert_no_5xx(replies)
        statuses = {r.status for r in replies}
        assert len(statuses) == 1, f"run {run}: mixed statuses {sorted(statuses)}"
        pages = {r.codes for r in replies}
        assert pages == {("LOGIN-01",)}, f"run {run}: not all the generic failure: {pages}"
        after = snapshot(pk)
        assert (after.enabled, after.reason, after.failed) == (False, "lockout", 5), (
            f"run {run}: {after}"
        )
        assert after.failed_without_access == PARALLEL_WRONG - rules.LOCKOUT_AFTER, (
            f"run {run}: {after}"
        )
        assert events_since(after, before, rules.EventKind.LOCKED_OUT) == 1, f"run {run}"
        assert events_since(after, before, rules.EventKind.LOGIN_FAILED) == PARALLEL_WRONG, (
            f"run {run}: every attempt is audited"
        )

        with requests.Session() as http:
            right = post_login(http, server, uid, PASSWORD, open_login(http, server))
            assert right.status == 200, f"run {run}: the right password got in: {right}"
            assert right.codes == ("LOGIN-01",), f"run {run}: the lockout stops guessing: {right}"
            home = http.get(server + HOME, allow_redirects=False, timeout=REQUEST_TIMEOUT)
            assert home.status_code == 302, f"run {run}: {home.status_code}"
            assert is_login(home.headers["Location"]), f"run {run}: {home.headers['Location']}"
        still = snapshot(pk)
        assert (still.enabled, still.failed) == (False, 5), f"run {run}: {still}"
        assert still.failed_without_access == after.failed_without_access, f"run {run}"

        reenable(user)
        assert snapshot(pk).failed_without_access == 0, f"run {run}: a new lock cycle"


def test_parallel_wrong_passwords_on_a_locked_account_are_all_counted(
    app: Flask, server: str
) -> None:
    """R1 as amended: the count without access is one atomic UPDATE, exact under 50 parallel
    attempts on an account that is already locked (no lost update, no second lock event)."""
    user, pk, uid = new_user()
    add_failures(user, rules.LOCKOUT_AFTER)
    before = snapshot(pk)
    assert (before.enabled, before.failed, before.failed_without_access) == (False, 5, 0)
    with requests.Session() as http:
        token = open_login(http, server)
        cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.get_dict().items())
    for run in range(2):
        replies = run_together(
            [
                functools.partial(post_login_with_cookie, server, cookie, uid, WRONG, token)
                for _ in range(PARALLEL_WRONG)
            ]
        )
        assert_no_5xx(replies)
        assert {r.codes for r in replies} == {("LOGIN-01",)}
        after = snapshot(pk)
        assert after.failed_without_access == PARALLEL_WRONG * (run + 1), after
        assert (after.enabled, after.failed) == (False, 5)
        assert events_since(after, before, rules.EventKind.LOGIN_FAILED) == PARALLEL_WRONG * (
            run + 1
        )
        assert events_since(after, before, rules.EventKind.LOCKED_OUT) == 0


def test_parallel_right_passwords_all_succeed(app: Flask, server: str) -> None:
    """LK-05: five concurrent correct logins all succeed (and clear earlier failures)."""
    user, pk, uid = new_user()
    add_failures(user, 2)
    before = snapshot(pk)
    assert (before.enabled, before.failed) == (True, 2)

    sessions = [requests.Session() for _ in range(5)]
    try:
        tokens = [open_login(http, server) for http in sessions]
        replies = run_together(
            [
                functools.partial(post_login, http, server, uid, PASSWORD, token)
                for http, token in zip(sessions, tokens, strict=True)
            ]
        )
        assert_no_5xx(replies)
        for reply in replies:
            assert (reply.status, is_home(reply.location)) == (302, True), reply
        for http in sessions:
            home = http.get(server + HOME, allow_redirects=False, timeout=REQUEST_TIMEOUT)
            assert home.status_code == 200, (home.status_code, home.headers.get("Location"))
    finally:
        for http in sessions:
            http.close()

    after = snapshot(pk)
    assert (after.enabled, after.failed) == (True, 0), after
    assert events_since(after, before, rules.EventKind.LOGIN_SUCCEEDED) == 5


def _serial_outcome_ok(kinds: list[str], final: Snapshot, prior: int) -> bool:
    """Does the final state equal replaying the audited attempts, in commit order, serially?"""
    state = rules.AccountState(
        enabled=True,
        active=True,
        reason=None,
        failures=prior,
        last_login=None,
        access_granted=clock.now(),
        expires_on=None,
    )
    for kind in kinds:
        if kind in (rules.EventKind.LOGIN_SUCCEEDED, rules.EventKind.LOGIN_REFUSED):
            ok = True
        elif kind == rules.EventKind.LOGIN_FAILED:
            ok = False
        else:
            continue  # locked_out follows the attempt that caused it
        state = rules.login_attempt(
            state, password_ok=ok, now=clock.now(), today=clock.today()
        ).state
    reason = state.reason.value if state.reason else None
    return (state.enabled, reason, state.failures) == (final.enabled, final.reason, final.failed)


def test_mixed_wrong_and_right_end_in_a_serial_state(app: Flask, server: str) -> None:
    """LK-05: 4 wrong + 1 right in parallel: ``enabled ⇒ failed < 5``, ``failed ≤ 5``, no 5xx,
    and the result is the one some serial order of those requests gives."""
    user, pk, uid = new_user()
    for run in range(MIXED_RUNS):
        prior = run % 2  # with one earlier failure, four wrong ones may lock before the right one
        reset(user)
        add_failures(user, prior)
        before = snapshot(pk)
        assert (before.enabled, before.failed) == (True, prior)
        first_id = last_event_id()

        sessions = [requests.Session() for _ in range(5)]
        try:
            tokens = [open_login(http, server) for http in sessions]
            passwords = [WRONG] * 4 + [PASSWORD]
            replies = run_together(
                [
                    functools.partial(post_login, http, server, uid, password, token)
                    for http, token, password in zip(sessions, tokens, passwords, strict=True)
                ]
            )
        finally:
            for http in sessions:
                http.close()

        assert_no_5xx(replies)
        after = snapshot(pk)
        assert after.failed <= rules.LOCKOUT_AFTER, f"run {run}: {after}"
        assert not after.enabled or after.failed < rules.LOCKOUT_AFTER, f"run {run}: {after}"

        right = replies[-1]
        for wrong in replies[:-1]:
            assert (wrong.status, wrong.codes) == (200, ("LOGIN-01",)), f"run {run}: {wrong}"
        if right.status == 302:  # the right one got in: the account has access
            assert is_home(right.location), f"run {run}: {right}"
            assert after.enabled, f"run {run}: logged in, yet {after}"
        else:  # refused: only because four wrong ones locked it first
            assert (right.status, right.codes) == (200, ("LOGIN-03",)), f"run {run}: {right}"
            assert (prior, after.enabled, after.reason) == (1, False, "lockout"), f"run {run}"

        kinds = [kind for _, kind in event_kinds_after(pk, first_id)]
        attempts = [k for k in kinds if k != rules.EventKind.LOCKED_OUT]
        assert len(attempts) == 5, f"run {run}: every attempt is audited once: {kinds}"
        assert _serial_outcome_ok(kinds, after, prior), (
            f"run {run}: {after} is not what {kinds} gives serially from {prior} failures"
        )

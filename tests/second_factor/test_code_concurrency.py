"""Twenty wrong second-factor codes at once against a REAL server (gunicorn, 2 workers × 8
threads) on SQLite and PostgreSQL: the wrong-code count is exact (R10, counted atomically in
SQL like R1): five are counted, one lock, no 5xx.

Each of the twenty clients passes the password step on its own session first (a right
password never touches the count of wrong codes), then all post a wrong code together.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask
from sqlalchemy import func
from sqlalchemy import select

from portal.accounts import rules
from portal.accounts.models import User
from portal.audit.models import AuditEvent
from portal.extensions import db
from tests.concurrency.test_login_concurrency import REQUEST_TIMEOUT
from tests.concurrency.test_login_concurrency import run_together
from tests.factories import PASSWORD
from tests.factories import make_user
from tests.helpers import csrf_token_in
from tests.live_server import SERVER_ENV
from tests.live_server import gunicorn
from tests.second_factor.helpers import STEP
from tests.second_factor.helpers import add_totp

pytestmark = pytest.mark.slow

CLIENTS = 20
LOGIN = "/portal/login"


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[str]:
    with gunicorn(
        database_url, tmp_path / "gunicorn.log", workers=2, threads=8, ready_path=LOGIN
    ) as base:
        yield base


def half_logged_in(base: str, user_id: str) -> tuple[requests.Session, str]:
    """A client past the password step; returns it and the code page's CSRF token."""
    http = requests.Session()
    token = csrf_token_in(http.get(base + LOGIN, timeout=REQUEST_TIMEOUT).text)
    response = http.post(
        base + LOGIN,
        data={"user_id": user_id, "password": PASSWORD, "csrf_token": token},
        allow_redirects=False,
        timeout=REQUEST_TIMEOUT,
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(STEP)
    page = http.get(base + STEP, timeout=REQUEST_TIMEOUT)
    assert page.status_code == 200
    return http, csrf_token_in(page.text)


def post_code(base: str, http: requests.Session, token: str, code: str) -> int:
    response = http.post(
        base + STEP,
        data={"code": code, "csrf_token": token},
        allow_redirects=False,
        timeout=REQUEST_TIMEOUT,
    )
    return response.status_code


# The sealed TOTP secret must open on the server: the same SECRET_KEY.
@pytest.mark.config(SECRET_KEY=SERVER_ENV["PORTAL_SECRET_KEY"], WTF_CSRF_ENABLED=True)
def test_twenty_concurrent_wrong_codes_lock_exactly_once(app: Flask, server: str) -> None:
    user = make_user()
    add_totp(user)
    pk, uid = user.id, user.user_id
    db.session.rollback()
    clients = [half_logged_in(server, uid) for _ in range(CLIENTS)]
    try:
        statuses = run_together(
            [
                lambda http=http, token=token: post_code(server, http, token, "000000")
                for http, token in clients
            ]
        )
    finally:
        for http, _ in clients:
            http.close()
    assert all(status < 500 for status in statuses), statuses
    db.session.expire_all()
    row = db.session.get(User, pk)
    assert row is not None
    assert (row.failed_codes, row.enabled, row.disabled_reason) == (5, False, "lockout")
    counts = dict(
        db.session.execute(
            select(AuditEvent.kind, func.count())
            .where(AuditEvent.subject_id == pk)
            .group_by(AuditEvent.kind)
        ).all()
    )
    db.session.rollback()
    assert counts.get(rules.EventKind.CODE_FAILED.value) == rules.CODE_LOCKOUT_AFTER
    assert counts.get(rules.EventKind.LOCKED_OUT.value) == 1
    # Four wrong codes answered with the code page again; the rest were sent to the login.
    assert statuses.count(200) == rules.CODE_LOCKOUT_AFTER - 1

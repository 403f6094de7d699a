"""The lockout notice under concurrent load against a real ``gunicorn -w 2`` (SQLite and
PostgreSQL): 50 parallel wrong passwords lock the account once, queue exactly one notice per
Administrator in the lockout's transaction, and the worker that locked delivers it to a real
SMTP server after the commit, while every request still gets the generic answer.

(The counting itself, five runs of 50 across the two workers, is in test_login_concurrency.)
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask
from sqlalchemy import select

from portal import mail_queue
from portal.accounts import notices
from portal.accounts.models import Profile
from portal.extensions import db
from portal.mail_queue import QueuedMail
from tests.concurrency.test_login_concurrency import LOGIN
from tests.concurrency.test_login_concurrency import PARALLEL_WRONG
from tests.concurrency.test_login_concurrency import WRONG
from tests.concurrency.test_login_concurrency import assert_no_5xx
from tests.concurrency.test_login_concurrency import open_login
from tests.concurrency.test_login_concurrency import post_login_with_cookie
from tests.concurrency.test_login_concurrency import run_together
from tests.concurrency.test_login_concurrency import snapshot
from tests.factories import make_org
from tests.factories import make_user
from tests.live_server import gunicorn
from tests.mail_server import SmtpServer

pytestmark = pytest.mark.slow


@pytest.fixture
def server(database_url: str, tmp_path: Path, smtp_server: SmtpServer) -> Iterator[str]:
    mail = {"PORTAL_MAIL_SERVER": smtp_server.host, "PORTAL_MAIL_PORT": str(smtp_server.port)}
    with gunicorn(
        database_url,
        tmp_path / "gunicorn.log",
        workers=2,
        threads=8,
        ready_path=LOGIN,
        env=mail,
    ) as base:
        yield base


def test_parallel_wrong_passwords_send_one_lockout_notice(
    app: Flask, server: str, smtp_server: SmtpServer
) -> None:
    org = make_org()
    make_user(org, user_id="notice.admin1", profile=Profile.ADMINISTRATOR)
    make_user(org, user_id="notice.admin2", profile=Profile.ADMINISTRATOR)
    user = make_user(org, user_id="notice.handler")
    pk = user.id
    db.session.rollback()

    with requests.Session() as http:
        token = open_login(http, server)
        cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.get_dict().items())
    replies = run_together(
        [
            functools.partial(
                post_login_with_cookie, server, cookie, "notice.handler", WRONG, token
            )
            for _ in range(PARALLEL_WRONG)
        ]
    )
    assert_no_5xx(replies)
    assert {r.codes for r in replies} == {("LOGIN-01",)}
    after = snapshot(pk)
    assert (after.enabled, after.reason, after.failed) == (False, "lockout", 5)

    smtp_server.wait_for(2, timeout=30)
    assert sorted(smtp_server.recipients) == [
        "notice.admin1@example.com",
        "notice.admin2@example.com",
    ]

    def statuses() -> list[str]:
        found = db.session.scalars(
            select(QueuedMail.status).where(QueuedMail.purpose == notices.LOCKOUT_PURPOSE)
        ).all()
        db.session.rollback()  # never hold a read transaction while the server works
        return sorted(found)

    deadline = time.monotonic() + 30  # the worker records "sent" just after the SMTP reply
    while statuses() != [mail_queue.SENT] * 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert statuses() == [mail_queue.SENT] * 2  # one per Administrator, never more

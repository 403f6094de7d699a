"""The lockout emails under concurrent load against a real ``gunicorn -w 2`` (SQLite and
PostgreSQL): 50 parallel wrong passwords lock the account once, queue exactly one email per
Administrator and one to the user in the lockout's transaction, and the worker that locked
delivers them to a real SMTP server after the commit, while every request still gets the
generic answer.  Several users locked at the same moment still give each Administrator one
email (the window is claimed once); the rest wait for the window to close.

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
from sqlalchemy import func
from sqlalchemy import select

from portal import mail_queue
from portal.accounts import lockout_notices
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

    smtp_server.wait_for(3, timeout=30)
    assert sorted(smtp_server.recipients) == [
        "notice.admin1@example.com",
        "notice.admin2@example.com",
        "notice.handler@example.com",
    ]

    deadline = time.monotonic() + 30  # the worker records "sent" just after the SMTP reply
    while statuses() != [mail_queue.SENT] * 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert statuses() == [mail_queue.SENT] * 3  # one per Administrator and the user, never more


def statuses(purpose: str | None = None) -> list[str]:
    purposes = (
        [purpose] if purpose else [lockout_notices.ADMIN_PURPOSE, lockout_notices.USER_PURPOSE]
    )
    found = db.session.scalars(
        select(QueuedMail.status).where(QueuedMail.purpose.in_(purposes))
    ).all()
    db.session.rollback()  # never hold a read transaction while the server works
    return sorted(found)


def test_users_locked_at_the_same_moment_give_each_administrator_one_email(
    app: Flask, server: str, smtp_server: SmtpServer
) -> None:
    """Five users of one organisation locked in parallel (5 × 5 wrong passwords at once): the
    window of each Administrator is claimed by exactly one lockout, the other four wait."""
    org = make_org()
    make_user(org, user_id="batch.admin1", profile=Profile.ADMINISTRATOR)
    make_user(org, user_id="batch.admin2", profile=Profile.ADMINISTRATOR)
    victims = [make_user(org, user_id=f"batch.victim{i}").user_id for i in range(5)]
    db.session.rollback()

    with requests.Session() as http:
        token = open_login(http, server)
        cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.get_dict().items())
    replies = run_together(
        [
            functools.partial(post_login_with_cookie, server, cookie, uid, WRONG, token)
            for uid in victims
            for _ in range(5)
        ]
    )
    assert_no_5xx(replies)
    assert {r.codes for r in replies} == {("LOGIN-01",)}

    admin_mails = db.session.scalars(
        select(QueuedMail.to_address).where(QueuedMail.purpose == lockout_notices.ADMIN_PURPOSE)
    ).all()
    waiting = db.session.scalar(select(func.count()).select_from(lockout_notices.LockoutAlert))
    user_mails = db.session.scalar(
        select(func.count())
        .select_from(QueuedMail)
        .where(QueuedMail.purpose == lockout_notices.USER_PURPOSE)
    )
    db.session.rollback()
    assert sorted(admin_mails) == ["batch.admin1@example.com", "batch.admin2@example.com"]
    assert waiting == 2 * 4  # each Administrator: the four other lockouts wait for the window
    assert user_mails == 5

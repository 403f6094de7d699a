"""Emails to an organisation's Administrators, received by a real SMTP server (aiosmtpd): the
nightly expiry digest and the lockout notice (queued with the lockout, sent after the commit)."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal import background
from portal import clock
from portal import mail_queue
from portal.accounts import notices
from portal.accounts import rules
from portal.accounts.models import Profile
from portal.extensions import db
from portal.jobs import runner
from portal.mail_queue import QueuedMail
from tests.factories import PASSWORD
from tests.factories import login
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import refresh
from tests.factories import remove_access
from tests.mail_server import SmtpServer

NIGHT = datetime(2026, 6, 15, 1, 0, tzinfo=UTC)  # 02:00 in London
TODAY = NIGHT.date()
WRONG = "not the password at all"


@pytest.fixture
def smtp(app: Flask, smtp_server: SmtpServer) -> SmtpServer:
    app.config.update(PORTAL_MAIL_SERVER=smtp_server.host, PORTAL_MAIL_PORT=smtp_server.port)
    return smtp_server


def queued(purpose: str) -> list[QueuedMail]:
    db.session.rollback()
    return list(
        db.session.scalars(
            select(QueuedMail).where(QueuedMail.purpose == purpose).order_by(QueuedMail.id)
        )
    )


def test_the_digest_goes_to_each_administrator_with_access(app: Flask, smtp: SmtpServer) -> None:
    created = NIGHT - timedelta(days=30)
    org = make_org("Acme Claims")
    admin = make_user(org, user_id="acme.admin", profile=Profile.ADMINISTRATOR, created_at=created)
    make_user(org, user_id="acme.admin2", profile=Profile.ADMINISTRATOR, created_at=created)
    gone = make_user(org, user_id="acme.gone", profile=Profile.ADMINISTRATOR, created_at=created)
    with clock.frozen(created):
        remove_access(gone)
    for user_id, days in (("in.1", 1), ("in.14", 14), ("in.15", 15), ("today", 0)):
        make_user(org, user_id=user_id, created_at=created, expires_on=TODAY + timedelta(days))
    quiet = make_org("Quiet Ltd")  # nobody expiring: no email
    make_user(quiet, user_id="quiet.admin", profile=Profile.ADMINISTRATOR, created_at=created)
    nobody = make_org("No Admins Ltd")  # expiring users but no Administrator with access
    make_user(nobody, user_id="orphan", created_at=created, expires_on=TODAY + timedelta(3))

    with clock.frozen(NIGHT):
        result = runner.run_nightly()
    assert result.ran
    assert result.status == "ok", result.errors
    assert result.counts["sweep"] == {"expiry": 1, "inactivity": 0}  # "today" went first
    assert result.counts["expiry_digests"] == {"organisations": 1, "digests": 2}
    assert result.counts["mail"]["sent"] == 2

    messages = smtp.wait_for(2)
    assert sorted(smtp.recipients) == ["acme.admin2@example.com", "acme.admin@example.com"]
    body = messages[0].get_content()
    assert messages[0]["Subject"] == "Claims Portal: 2 users of Acme Claims expire soon"
    assert "in.1 (Name in.1): expires on 16 Jun 2026 (tomorrow)" in body
    assert "in.14 (Name in.14): expires on 29 Jun 2026 (in 14 days)" in body
    assert "in.15" not in body
    assert "- today (" not in body  # expired tonight: disabled by the sweep, not listed
    assert "/console/users?sort=expiry" in body
    assert all(row.status == mail_queue.SENT for row in queued(notices.DIGEST_PURPOSE))
    assert refresh(admin).enabled


def test_no_digest_when_nobody_expires(app: Flask, smtp: SmtpServer) -> None:
    org = make_org()
    make_user(org, profile=Profile.ADMINISTRATOR, created_at=NIGHT - timedelta(days=1))
    with clock.frozen(NIGHT):
        result = runner.run_nightly()
    assert result.counts["expiry_digests"] == {"organisations": 0, "digests": 0}
    assert queued(notices.DIGEST_PURPOSE) == []
    assert smtp.messages == []


def test_a_lockout_notifies_the_administrators_after_the_commit(
    app: Flask, client: FlaskClient, smtp: SmtpServer
) -> None:
    org = make_org("Acme Claims")
    make_user(org, user_id="acme.admin", profile=Profile.ADMINISTRATOR)
    other = make_org("Other Ltd")
    make_user(other, user_id="other.admin", profile=Profile.ADMINISTRATOR)
    handler = make_user(org, user_id="acme.handler")
    for _ in range(rules.LOCKOUT_AFTER - 1):
        login(client, "acme.handler", WRONG)
    background.wait_idle(app)
    assert queued(notices.LOCKOUT_PURPOSE) == []  # no lockout yet

    login(client, "acme.handler", WRONG)
    background.wait_idle(app)
    [message] = smtp.wait_for(1)
    assert smtp.recipients == ["acme.admin@example.com"]
    assert message["Subject"] == "Claims Portal: acme.handler is locked out"
    body = message.get_content()
    assert "acme.handler (Name acme.handler) was locked out" in body
    assert f"/console/users/{handler.id}" in body
    [row] = queued(notices.LOCKOUT_PURPOSE)
    assert (row.status, row.ref) == (mail_queue.SENT, "acme.handler")

    login(client, "acme.handler", WRONG)  # already locked: no second notice
    login(client, "acme.handler", PASSWORD)
    background.wait_idle(app)
    assert len(queued(notices.LOCKOUT_PURPOSE)) == 1


def test_a_locked_out_administrator_is_not_told_about_itself(
    app: Flask, client: FlaskClient, smtp: SmtpServer
) -> None:
    org = make_org()
    make_user(org, user_id="first.admin", profile=Profile.ADMINISTRATOR)
    make_user(org, user_id="second.admin", profile=Profile.ADMINISTRATOR)
    for _ in range(rules.LOCKOUT_AFTER):
        login(client, "first.admin", WRONG, door="console")
    background.wait_idle(app)
    smtp.wait_for(1)
    assert smtp.recipients == ["second.admin@example.com"]


def test_with_smtp_down_the_lockout_notice_waits_for_the_nightly_retry(
    app: Flask, client: FlaskClient, smtp_server: SmtpServer
) -> None:
    app.config.update(PORTAL_MAIL_SERVER="127.0.0.1", PORTAL_MAIL_PORT=1, PORTAL_MAIL_TIMEOUT=2)
    org = make_org()
    make_user(org, user_id="acme.admin", profile=Profile.ADMINISTRATOR)
    make_user(org, user_id="acme.handler")
    for _ in range(rules.LOCKOUT_AFTER):
        response = login(client, "acme.handler", WRONG)
        assert response.status_code == 200  # the login never waits for, nor fails with, SMTP
    background.wait_idle(app)
    [row] = queued(notices.LOCKOUT_PURPOSE)
    assert (row.status, row.attempts) == (mail_queue.PENDING, 1)

    app.config.update(PORTAL_MAIL_SERVER=smtp_server.host, PORTAL_MAIL_PORT=smtp_server.port)
    clock.advance(timedelta(hours=1))
    result = runner.run_nightly()
    assert result.counts["mail"] == {"expired": 0, "tried": 1, "sent": 1, "still_pending": 0}
    assert smtp_server.wait_for(1)[0]["To"] == "acme.admin@example.com"


def test_a_wrong_current_password_that_locks_out_also_notifies(
    app: Flask, client: FlaskClient, smtp: SmtpServer
) -> None:
    org = make_org()
    make_user(org, user_id="acme.admin", profile=Profile.ADMINISTRATOR)
    make_user(org, user_id="acme.handler")
    login(client, "acme.handler")
    for _ in range(rules.LOCKOUT_AFTER):
        new = "a brand new passphrase for the portal"
        client.post(
            "/account/password",
            data={"current_password": WRONG, "password": new, "confirm": new},
        )
    background.wait_idle(app)
    rows = queued(notices.LOCKOUT_PURPOSE)
    assert len(rows) == 1
    smtp.wait_for(1)

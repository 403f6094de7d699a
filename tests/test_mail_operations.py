"""What operators see of the mail queue and how they act on it: the Portal team's mail page and
the count on its home page, ``portal mail list`` and ``portal mail retry``, and the scheduler's
retry job every few minutes (not only at night)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from flask import Flask
from flask.testing import FlaskClient
from flask.testing import FlaskCliRunner

from portal import clock
from portal import mail_queue
from portal.accounts.models import Profile
from portal.db import write_transaction
from portal.extensions import db
from portal.jobs import runner
from portal.mail_queue import QueuedMail
from tests.helpers import sign_in_as
from tests.mail_server import SmtpServer


def _queue(to: str, *, purpose: str = "helpdesk.ack", secret: bool = False) -> int:
    with write_transaction(db.session):
        row = mail_queue.enqueue(
            to,
            "Subject",
            "Body",
            purpose=purpose,
            ref="HD-000042",
            secret_until=clock.now() + timedelta(hours=1) if secret else None,
        )
    return row.id


def _fail_all(app: Flask) -> None:
    """Every pending row tried against a closed port until it is failed (clock moved on)."""
    app.config.update(PORTAL_MAIL_SERVER="127.0.0.1", PORTAL_MAIL_PORT=1, PORTAL_MAIL_TIMEOUT=2)
    clock.advance(timedelta(hours=25))
    mail_queue.run_due()


@pytest.fixture
def smtp(app: Flask, smtp_server: SmtpServer) -> SmtpServer:
    app.config.update(PORTAL_MAIL_SERVER=smtp_server.host, PORTAL_MAIL_PORT=smtp_server.port)
    return smtp_server


# --- the Portal team's pages ----------------------------------------------------------------


def test_failed_mail_is_counted_on_the_operator_home_and_listed(
    app: Flask, client: FlaskClient
) -> None:
    sign_in_as(client, Profile.PORTAL_TEAM)
    home = client.get("/operator/").get_data(as_text=True)
    assert 'id="mail-undelivered"' not in home
    assert 'href="/operator/mail"' in home
    with clock.frozen(clock.now()):
        _queue("lost@example.com")
        _queue("link@example.com", purpose="password_reset.link", secret=True)
        _fail_all(app)
        _queue("waiting@example.com")
        mail_queue.run_due()
    home = client.get("/operator/").get_data(as_text=True)
    assert "2 emails could not be delivered" in home
    page = client.get("/operator/mail")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    undelivered, retrying = body.split('id="retrying-title"')
    assert "lost@example.com" in undelivered
    assert "expired (link wiped)" in undelivered  # its link expired while it was failing
    assert "ConnectionRefusedError" in undelivered
    assert "waiting@example.com" in retrying
    assert "waiting@example.com" not in undelivered


@pytest.mark.parametrize(
    "profile", [Profile.HELPDESK, Profile.ADMINISTRATOR, Profile.CLAIMS_HANDLER]
)
def test_the_mail_page_is_for_the_portal_team_only(client: FlaskClient, profile: Profile) -> None:
    sign_in_as(client, profile)
    assert client.get("/operator/mail").status_code == 403


# --- the CLI --------------------------------------------------------------------------------


def test_portal_mail_list_shows_status_purpose_recipient_attempts_and_error(
    app: Flask, runner: FlaskCliRunner
) -> None:
    with clock.frozen(clock.now()):
        _queue("lost@example.com")
        _fail_all(app)
        _queue("new@example.com", purpose="newsletter.confirm")
        result = runner.invoke(args=["portal", "mail", "list"])
        assert result.exit_code == 0, result.output
        assert "pending 1  sent 0  failed 1  expired 0" in result.output
        lines = result.output.splitlines()
        [failed] = [line for line in lines if "lost@example.com" in line]
        assert failed.split()[1:5] == ["failed", "helpdesk.ack", "lost@example.com", "1"]
        assert "25h" in failed  # queued 25 hours ago
        assert any("last error: SMTP 127.0.0.1:1" in line for line in lines)
        only = runner.invoke(args=["portal", "mail", "list", "--status", "pending"])
    assert "new@example.com" in only.output
    assert "lost@example.com" not in only.output
    refused = runner.invoke(args=["portal", "mail", "list", "--status", "lost"])
    assert refused.exit_code != 0


def test_portal_mail_retry_sends_what_failed_once_smtp_is_back(
    app: Flask, runner: FlaskCliRunner, smtp_server: SmtpServer
) -> None:
    with clock.frozen(clock.now()):
        mail_id = _queue("lost@example.com")
        _fail_all(app)
    app.config.update(PORTAL_MAIL_SERVER=smtp_server.host, PORTAL_MAIL_PORT=smtp_server.port)
    pending_only = runner.invoke(args=["portal", "mail", "retry", "--pending-only"])
    assert "Tried 0 message(s)" in pending_only.output
    result = runner.invoke(args=["portal", "mail", "retry"])
    assert result.exit_code == 0, result.output
    assert "Tried 1 message(s): 1 sent" in result.output
    assert smtp_server.wait_for(1)[0]["To"] == "lost@example.com"
    db.session.rollback()
    row = db.session.get(QueuedMail, mail_id)
    assert row is not None
    assert row.status == mail_queue.SENT


# --- the scheduler --------------------------------------------------------------------------


@pytest.mark.config(PORTAL_MAIL_RETRY_MINUTES=3)
def test_the_scheduler_retries_mail_every_few_minutes(app: Flask, smtp: SmtpServer) -> None:
    scheduler = BackgroundScheduler(timezone="UTC")
    runner.configure(scheduler, app, with_catch_up=False)
    job = scheduler.get_job(runner.MAIL_JOB_ID)
    assert job is not None
    assert isinstance(job.trigger, IntervalTrigger)
    assert job.trigger.interval == timedelta(minutes=3)
    # What it runs: the due mail, in its own app context.
    mail_id = _queue("ada@example.com")
    db.session.commit()
    assert job.func(*job.args) == {"expired": 0, "tried": 1, "sent": 1, "still_pending": 0}
    assert smtp.wait_for(1)[0]["To"] == "ada@example.com"
    db.session.rollback()
    row = db.session.get(QueuedMail, mail_id)
    assert row is not None
    assert row.status == mail_queue.SENT

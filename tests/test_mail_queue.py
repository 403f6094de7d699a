"""portal.mail_queue: stored with the action, sent after it, retried with backoff, claimed
atomically, never lost when SMTP is down; secrets sealed at rest and wiped (real SMTP server)."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy import text

from portal import background
from portal import clock
from portal import mail_queue
from portal import mail_secrets
from portal.db import write_transaction
from portal.extensions import db
from portal.mail_queue import QueuedMail
from tests.live_server import REPO
from tests.live_server import _server_env
from tests.mail_server import SmtpServer

SECRET = "https://portal.example.test/password-reset/s3cr3t-t0ken-that-must-not-leak"


def _queue(to: str = "ada@example.com", **kwargs: Any) -> int:
    with write_transaction(db.session):
        row = mail_queue.enqueue(
            to, "Your request HD-000001", "Thanks.", purpose="test", ref="HD-000001", **kwargs
        )
    return row.id


def _queue_secret(until: timedelta = timedelta(minutes=60)) -> int:
    with write_transaction(db.session):
        row = mail_queue.enqueue(
            "ada@example.com",
            "Reset your password",
            f"Open this link:\n\n{SECRET}\n",
            purpose="password_reset.link",
            secret_until=clock.now() + until,
        )
    return row.id


def _row(mail_id: int) -> QueuedMail:
    db.session.rollback()
    db.session.expire_all()
    row = db.session.get(QueuedMail, mail_id)
    assert row is not None
    db.session.rollback()
    return row


def _raw_rows() -> str:
    """Every column of every queued row as the database returns it (what a dump holds)."""
    db.session.rollback()
    rows = db.session.execute(text("SELECT * FROM mail_queue")).all()
    db.session.rollback()
    return repr(rows)


@pytest.fixture
def smtp(app: Flask, smtp_server: SmtpServer) -> SmtpServer:
    app.config.update(
        PORTAL_MAIL_SERVER=smtp_server.host,
        PORTAL_MAIL_PORT=smtp_server.port,
        PORTAL_MAIL_TIMEOUT=5,
    )
    return smtp_server


# --- sent after the commit, once ------------------------------------------------------------


def test_a_queued_message_is_delivered_after_the_commit(app: Flask, smtp: SmtpServer) -> None:
    mail_id = _queue()
    assert _row(mail_id).status == mail_queue.PENDING
    mail_queue.deliver_soon([_row(mail_id)])
    background.wait_idle(app)
    [message] = smtp.wait_for(1)
    assert message["Subject"] == "Your request HD-000001"
    row = _row(mail_id)
    assert (row.status, row.attempts, row.last_error, row.claimed_until) == (
        mail_queue.SENT,
        1,
        None,
        None,
    )
    assert row.sent_at is not None
    assert row.body == "Thanks."  # nothing secret: kept
    assert mail_queue.deliver(mail_id) is False  # never sent twice
    assert len(smtp.messages) == 1


def test_smtp_down_then_back_the_message_arrives_exactly_once(app: Flask, smtp: SmtpServer) -> None:
    with clock.frozen(clock.now()):
        smtp.stop()
        mail_id = _queue()
        assert mail_queue.deliver(mail_id) is False
        row = _row(mail_id)
        assert (row.status, row.attempts) == (mail_queue.PENDING, 1)
        assert row.last_error is not None
        assert "SMTP" in row.last_error
        assert row.next_attempt_at == clock.now() + mail_queue.BACKOFF[0]
        # Not due yet: nothing is tried, even with the server back.
        smtp.start()
        assert mail_queue.run_due()["tried"] == 0
        clock.advance(mail_queue.BACKOFF[0])
        assert mail_queue.run_due() == {"expired": 0, "tried": 1, "sent": 1, "still_pending": 0}
        assert mail_queue.run_due()["tried"] == 0
    [message] = smtp.wait_for(1)
    assert message["To"] == "ada@example.com"
    row = _row(mail_id)
    assert (row.status, row.attempts, row.last_error) == (mail_queue.SENT, 2, None)
    assert len(smtp.messages) == 1


def test_the_wait_grows_and_after_24_hours_the_message_fails_and_is_logged(
    app: Flask, smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    smtp.stop()
    with clock.frozen(clock.now()):
        start = clock.now()
        mail_id = _queue()
        waits = []
        while True:
            with caplog.at_level(logging.ERROR, logger="portal.mail_queue"):
                assert mail_queue.run_due()["sent"] == 0
            row = _row(mail_id)
            if row.status != mail_queue.PENDING:
                break
            waits.append(row.next_attempt_at - clock.now())
            clock.advance(row.next_attempt_at - clock.now())
    assert waits[:6] == list(mail_queue.BACKOFF)
    assert set(waits[6:]) == {mail_queue.BACKOFF[-1]}
    assert row.status == mail_queue.FAILED
    assert row.last_attempt_at is not None
    assert row.last_attempt_at - start >= timedelta(hours=24)
    assert row.last_attempt_at - start < timedelta(hours=24, minutes=31)
    assert row.attempts == len(waits) + 1
    [failure] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert f"queued mail {mail_id} (test, ref HD-000001) FAILED" in failure.getMessage()
    assert mail_queue.deliver(mail_id) is False  # no longer tried
    assert mail_queue.counts_by_status()[mail_queue.FAILED] == 1


@pytest.mark.config(PORTAL_MAIL_RETRY_HOURS=1)
def test_the_retry_window_is_a_setting(app: Flask, smtp: SmtpServer) -> None:
    smtp.stop()
    with clock.frozen(clock.now()):
        mail_id = _queue()
        clock.advance(timedelta(hours=1))
        mail_queue.run_due()
    assert (_row(mail_id).status, _row(mail_id).attempts) == (mail_queue.FAILED, 1)


def test_portal_mail_retry_gives_failed_mail_one_more_attempt(app: Flask, smtp: SmtpServer) -> None:
    smtp.stop()
    with clock.frozen(clock.now()):
        failed = _queue("failed@example.com")
        clock.advance(timedelta(hours=25))
        mail_queue.run_due()
        assert _row(failed).status == mail_queue.FAILED
        pending = _queue("pending@example.com")
        assert mail_queue.deliver(pending) is False  # backing off now
        smtp.start()
        counts = mail_queue.retry_now()
    assert counts["made_due"] == 2
    assert counts["sent"] == 2
    assert sorted(smtp.recipients) == ["failed@example.com", "pending@example.com"]
    assert {_row(failed).status, _row(pending).status} == {mail_queue.SENT}


def test_header_injection_is_refused_before_anything_is_stored(app: Flask) -> None:
    with pytest.raises(ValueError, match="line break"), write_transaction(db.session):
        mail_queue.enqueue("a@example.com\r\nBcc: x@example.com", "s", "t", purpose="test")
    db.session.rollback()
    assert db.session.scalars(select(QueuedMail)).all() == []


# --- claims: at most one sender per attempt ---------------------------------------------------


def test_a_claimed_row_cannot_be_claimed_again_until_its_lease_runs_out(app: Flask) -> None:
    with clock.frozen(clock.now()):
        mail_id = _queue()
        first = mail_queue.claim(mail_id, now=clock.now())
        assert first is not None
        assert first.attempts == 1
        assert mail_queue.claim(mail_id, now=clock.now()) is None
        # The sender died holding it: once the lease is over, another one takes it.
        clock.advance(mail_queue.MIN_LEASE)
        second = mail_queue.claim(mail_id, now=clock.now())
        assert second is not None
        assert second.attempts == 2


def test_concurrent_senders_send_each_message_once(app: Flask, smtp: SmtpServer) -> None:
    """Four threads, each with its own connection, retry the same 20 rows at once."""
    ids = [_queue(f"user{i}@example.com") for i in range(20)]
    db.session.commit()
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def sender() -> None:
        try:
            with app.app_context():
                barrier.wait(timeout=30)
                for mail_id in ids:
                    mail_queue.deliver(mail_id)
                db.session.remove()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    smtp.wait_for(20)
    assert sorted(smtp.recipients) == sorted(f"user{i}@example.com" for i in range(20))
    assert {(_row(i).status, _row(i).attempts) for i in ids} == {(mail_queue.SENT, 1)}


@pytest.mark.slow
def test_two_retrier_processes_send_each_message_once(
    app: Flask, smtp: SmtpServer, database_url: str
) -> None:
    """Two ``portal mail retry`` processes on the same queue: every message arrives once."""
    ids = [_queue(f"user{i}@example.com") for i in range(40)]
    db.session.commit()
    env = _server_env(
        database_url,
        {"PORTAL_MAIL_SERVER": smtp.host, "PORTAL_MAIL_PORT": str(smtp.port)},
    )
    env["PORTAL_SECRET_KEY"] = app.config["SECRET_KEY"]
    command = [sys.executable, "-m", "flask", "--app", "app", "portal", "mail", "retry"]
    procs = [
        subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=120)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    smtp.wait_for(40)
    assert sorted(smtp.recipients) == sorted(f"user{i}@example.com" for i in range(40))
    assert {(_row(i).status, _row(i).attempts) for i in ids} == {(mail_queue.SENT, 1)}


# --- secrets: sealed at rest, wiped once sent or expired --------------------------------------


def test_a_secret_is_stored_only_as_ciphertext_and_wiped_once_sent(
    app: Flask, smtp: SmtpServer
) -> None:
    smtp.stop()
    mail_id = _queue_secret()
    assert mail_queue.deliver(mail_id) is False
    stored = _raw_rows()
    assert SECRET not in stored
    assert "s3cr3t" not in stored
    row = _row(mail_id)
    assert row.sealed
    assert mail_secrets.unseal(row.body).endswith(f"{SECRET}\n")
    smtp.start()
    with clock.frozen(clock.now() + mail_queue.BACKOFF[0]):
        assert mail_queue.run_due()["sent"] == 1
    [message] = smtp.wait_for(1)
    assert SECRET in message.get_content()
    row = _row(mail_id)
    assert (row.status, row.body, row.wiped) == (mail_queue.SENT, "", True)


def test_an_unsent_secret_is_wiped_and_marked_expired_when_its_link_expires(
    app: Flask, smtp: SmtpServer
) -> None:
    smtp.stop()
    with clock.frozen(clock.now()):
        mail_id = _queue_secret(timedelta(minutes=60))
        assert mail_queue.deliver(mail_id) is False
        clock.advance(timedelta(minutes=59))
        assert mail_queue.run_due()["expired"] == 0
        assert _row(mail_id).body != ""
        clock.advance(timedelta(minutes=1))
        smtp.start()  # too late: the link no longer works, so it is not sent
        assert mail_queue.run_due() == {"expired": 1, "tried": 0, "sent": 0, "still_pending": 0}
    row = _row(mail_id)
    assert (row.status, row.body) == (mail_queue.EXPIRED, "")
    assert mail_queue.retry_now()["made_due"] == 0  # nothing left to send
    assert smtp.messages == []


def test_a_failed_secret_is_wiped_too(app: Flask, smtp: SmtpServer) -> None:
    smtp.stop()
    with clock.frozen(clock.now()):
        mail_id = _queue_secret(timedelta(days=3))
        clock.advance(timedelta(hours=24))
        mail_queue.run_due()
    row = _row(mail_id)
    assert (row.status, row.body) == (mail_queue.FAILED, "")


def test_a_body_sealed_under_another_secret_key_fails_without_sending(
    app: Flask, smtp: SmtpServer
) -> None:
    mail_id = _queue_secret()
    app.config["SECRET_KEY"] = "another-secret-key-0123456789-0123456789-abcdef"
    assert mail_queue.deliver(mail_id) is False
    row = _row(mail_id)
    assert (row.status, row.body) == (mail_queue.FAILED, "")
    assert row.last_error is not None
    assert "SECRET_KEY" in row.last_error
    assert smtp.messages == []


def test_the_old_key_opens_sealed_bodies_after_a_rotation(app: Flask, smtp: SmtpServer) -> None:
    mail_id = _queue_secret()
    old = app.config["SECRET_KEY"]
    app.config.update(
        SECRET_KEY="the-new-secret-key-0123456789-0123456789-abcdef", SECRET_KEY_FALLBACKS=[old]
    )
    assert mail_queue.deliver(mail_id) is True
    assert SECRET in smtp.wait_for(1)[0].get_content()


def test_the_key_is_derived_not_the_secret_key_itself() -> None:
    key = mail_secrets.derive_key("k" * 40)
    assert key == mail_secrets.derive_key("k" * 40)
    assert key != mail_secrets.derive_key("k" * 39 + "l")
    assert b"k" * 8 not in key

"""portal.mail_queue: stored with the action, sent after it, never lost when SMTP is down."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from portal import background
from portal import clock
from portal import mail_queue
from portal.db import write_transaction
from portal.extensions import db
from portal.mail_queue import QueuedMail
from tests.mail_server import SmtpServer


def _queue(to: str = "ada@example.com") -> int:
    with write_transaction(db.session):
        row = mail_queue.enqueue(
            to, "Your request HD-000001", "Thanks.", purpose="test", ref="HD-000001"
        )
    return row.id


def _row(mail_id: int) -> QueuedMail:
    db.session.rollback()
    db.session.expire_all()
    row = db.session.get(QueuedMail, mail_id)
    assert row is not None
    return row


@pytest.fixture
def smtp_settings(app: Flask, smtp_server: SmtpServer) -> SmtpServer:
    app.config.update(PORTAL_MAIL_SERVER=smtp_server.host, PORTAL_MAIL_PORT=smtp_server.port)
    return smtp_server


def test_a_queued_message_is_delivered_after_the_commit(
    app: Flask, smtp_settings: SmtpServer
) -> None:
    mail_id = _queue()
    assert _row(mail_id).status == mail_queue.PENDING
    mail_queue.deliver_soon([_row(mail_id)])
    background.wait_idle(app)
    [message] = smtp_settings.wait_for(1)
    assert message["Subject"] == "Your request HD-000001"
    row = _row(mail_id)
    assert (row.status, row.attempts, row.last_error) == (mail_queue.SENT, 1, None)
    assert row.sent_at is not None
    assert mail_queue.deliver(mail_id) is False  # never sent twice
    assert len(smtp_settings.messages) == 1


def test_smtp_down_keeps_the_message_pending_with_its_error(
    app: Flask, smtp_server: SmtpServer
) -> None:
    smtp_server_port = smtp_server.port
    app.config.update(PORTAL_MAIL_SERVER="127.0.0.1", PORTAL_MAIL_PORT=1, PORTAL_MAIL_TIMEOUT=2)
    mail_id = _queue()
    assert mail_queue.deliver(mail_id) is False
    row = _row(mail_id)
    assert (row.status, row.attempts) == (mail_queue.PENDING, 1)
    assert row.last_error
    assert "SMTP" in row.last_error
    # Too soon for a retry; then the server is back and the retry sends it.
    assert mail_queue.retry_pending() == {"tried": 0, "sent": 0, "still_pending": 0}
    app.config.update(PORTAL_MAIL_SERVER=smtp_server.host, PORTAL_MAIL_PORT=smtp_server_port)
    clock.advance(mail_queue.RETRY_AFTER + timedelta(seconds=1))
    assert mail_queue.retry_pending() == {"tried": 1, "sent": 1, "still_pending": 0}
    assert smtp_server.wait_for(1)[0]["To"] == "ada@example.com"
    assert _row(mail_id).status == mail_queue.SENT


def test_a_message_that_keeps_failing_is_marked_failed(app: Flask) -> None:
    app.config.update(PORTAL_MAIL_SERVER="127.0.0.1", PORTAL_MAIL_PORT=1, PORTAL_MAIL_TIMEOUT=2)
    mail_id = _queue()
    for _ in range(mail_queue.MAX_ATTEMPTS):
        mail_queue.deliver(mail_id)
    row = _row(mail_id)
    assert (row.status, row.attempts) == (mail_queue.FAILED, mail_queue.MAX_ATTEMPTS)
    assert mail_queue.deliver(mail_id) is False
    assert _row(mail_id).attempts == mail_queue.MAX_ATTEMPTS


def test_header_injection_is_refused_before_anything_is_stored(app: Flask) -> None:
    with pytest.raises(ValueError, match="line break"), write_transaction(db.session):
        mail_queue.enqueue("a@example.com\r\nBcc: x@example.com", "s", "t", purpose="test")
    db.session.rollback()
    assert db.session.scalars(select(QueuedMail)).all() == []

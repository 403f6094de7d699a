"""SMTP refusing, then back, against a real gunicorn with 2 workers: Contact Us
acknowledgements and password-reset links sent while the mail server is down wait in the
durable queue, and once it is back the retry (``portal mail retry``, the job's entry point)
delivers every one of them exactly once; logins never see a 5xx meanwhile (issue 10,
points 3 and 8)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from aiosmtpd.controller import Controller
from flask import Flask
from sqlalchemy import func
from sqlalchemy import select

from portal import clock
from portal import create_app
from portal.accounts.models import Profile
from portal.extensions import db
from portal.mail_queue import QueuedMail
from tests.concurrency.test_login_concurrency import LOGIN
from tests.factories import PASSWORD
from tests.factories import make_org
from tests.factories import make_user
from tests.faults.processes import figure
from tests.faults.processes import wait_until
from tests.faults.traffic import Traffic
from tests.helpers import csrf_token_in
from tests.live_server import SERVER_ENV
from tests.live_server import gunicorn
from tests.mail_server import HOST
from tests.mail_server import SmtpServer
from tests.mail_server import _Collector
from tests.mail_server import _free_port

pytestmark = pytest.mark.slow

CONTACTS = 6
RESETS = 6
CLIENTS = 2
#: The retry is run this much later (the queue backs off after a failure); well inside the
#: reset link's 60 minutes, so the links are still worth sending.
LATER = timedelta(minutes=20)
TIMEOUT = 60.0


class SwitchableSmtp:
    """The suite's aiosmtpd collector, stopped and started again on the same port."""

    def __init__(self) -> None:
        self.server = SmtpServer(HOST, _free_port())
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(_Collector(self.server), hostname=HOST, port=self.server.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def smtp() -> Iterator[SwitchableSmtp]:
    switchable = SwitchableSmtp()
    switchable.start()
    try:
        yield switchable
    finally:
        switchable.stop()


def _mail_settings(smtp: SwitchableSmtp) -> dict[str, Any]:
    return {
        "PORTAL_MAIL_SERVER": HOST,
        "PORTAL_MAIL_PORT": smtp.server.port,
        "PORTAL_MAIL_TIMEOUT": 5,
        "PORTAL_BASE_URL": "http://portal.example",
    }


def _post_form(base: str, path: str, data: dict[str, Any]) -> int:
    with requests.Session() as http:
        page = http.get(base + path, timeout=TIMEOUT)
        assert page.status_code == 200
        answer = http.post(
            base + path,
            data={**data, "csrf_token": csrf_token_in(page.text)},
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        return answer.status_code


def _contact(i: int) -> dict[str, str]:
    return {
        "full_name": f"Sender {i}",
        "email": f"sender{i}@example.com",
        "organisation": "Acme Claims Ltd",
        "user_id": f"acme.sender{i}",
        "role": "administrator",
        "console": "admin_console",
        "environment": "live",
        "error_message": "Your User ID has reached its expiry date.",
        "details": "Since this morning.",
        "website": "",
    }


def _waiting_after_a_failure() -> int:
    count = db.session.scalar(
        select(func.count(QueuedMail.id)).where(
            QueuedMail.status == "pending", QueuedMail.attempts >= 1
        )
    )
    db.session.rollback()
    return int(count or 0)


def test_mail_sent_while_smtp_refuses_arrives_once_when_it_is_back(
    app: Flask, settings: dict[str, Any], database_url: str, tmp_path: Path, smtp: SwitchableSmtp
) -> None:
    org = make_org("Mail Down Ltd")
    admins = [
        make_user(org, user_id=f"mail.admin{i}", profile=Profile.ADMINISTRATOR)
        for i in range(RESETS)
    ]
    resets = [(a.user_id, a.email) for a in admins]
    handlers = [make_user(org, user_id=f"mail.user{i}").user_id for i in range(CLIENTS)]
    db.session.rollback()
    mail = _mail_settings(smtp)
    env = {k: str(v) for k, v in mail.items()}
    log_path = tmp_path / "gunicorn.log"
    with gunicorn(database_url, log_path, workers=2, threads=4, ready_path=LOGIN, env=env) as base:
        smtp.stop()  # refusing from here on
        with Traffic(base, handlers, PASSWORD) as traffic:
            answers = [_post_form(base, "/helpdesk/contact", _contact(i)) for i in range(CONTACTS)]
            answers += [
                _post_form(base, "/password-reset", {"user_id": uid, "email": email})
                for uid, email in resets
            ]
            wait_until(
                lambda: _waiting_after_a_failure() >= CONTACTS + RESETS,
                timeout=TIMEOUT,
                what="every message to be queued and tried once while SMTP refuses",
            )
            traffic.wait_for_more(CLIENTS, timeout=TIMEOUT, what="logins while SMTP refuses")
        assert not smtp.server.messages

        smtp.start()
        retry_app = create_app({**settings, **mail, "SECRET_KEY": SERVER_ENV["PORTAL_SECRET_KEY"]})
        # The test's own app context is current: the command must run in the retry app's.
        with clock.frozen(clock.now() + LATER), retry_app.app_context():
            for _ in range(2):  # the second retry must send nothing again
                result = retry_app.test_cli_runner().invoke(args=["portal", "mail", "retry"])
                assert result.exit_code == 0, result.output
            db.session.remove()
            db.engine.dispose()
        smtp.server.wait_for(CONTACTS + RESETS, timeout=TIMEOUT)

    assert answers == [302] * CONTACTS + [200] * RESETS
    assert not traffic.errors, traffic.errors[:3]
    assert not traffic.server_errors, dict(traffic.statuses)
    received = Counter(smtp.server.recipients)
    expected = Counter([f"sender{i}@example.com" for i in range(CONTACTS)] + [e for _, e in resets])
    assert received == expected  # every message, each exactly once
    links = [m for m in smtp.server.messages if re.search(r"/password-reset/\S+", m.get_content())]
    assert len(links) == RESETS
    assert _waiting_after_a_failure() == 0
    figure(
        database_url,
        f"smtp refusing: {CONTACTS} acknowledgements and {RESETS} reset links queued, "
        f"{traffic.rounds} login rounds, 0 5xx; smtp back: {len(smtp.server.messages)} "
        f"delivered, 0 lost, 0 twice",
    )

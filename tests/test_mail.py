"""portal.mail: SMTP through a real server, the development outbox, header injection."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from portal import create_app
from portal import mail
from portal.extensions import db
from tests.conftest import base_settings
from tests.mail_server import SmtpServer


def _app(tmp_path: Path, **settings: Any) -> Flask:
    return create_app({**base_settings(f"sqlite:///{tmp_path}/mail.sqlite"), **settings})


@pytest.fixture
def smtp_app(tmp_path: Path, smtp_server: SmtpServer) -> Iterator[Flask]:
    app = _app(tmp_path, PORTAL_MAIL_SERVER=smtp_server.host, PORTAL_MAIL_PORT=smtp_server.port)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def outbox_app(tmp_path: Path) -> Iterator[Flask]:
    app = _app(tmp_path, PORTAL_MAIL_OUTBOX=str(tmp_path / "outbox"))
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def test_smtp_delivers_to_the_recipient(smtp_app: Flask, smtp_server: SmtpServer) -> None:
    mail.send("ada@example.com", "Hello", "Some text.\nWith two lines.")
    [message] = smtp_server.wait_for(1)
    assert smtp_server.recipients == ["ada@example.com"]
    assert message["To"] == "ada@example.com"
    assert message["From"] == "Claims Portal Console <no-reply@localhost>"
    assert message["Subject"] == "Hello"
    assert message["Message-ID"].endswith("@localhost>")
    assert message["Date"]
    assert message.get_content() == "Some text.\nWith two lines.\n"


def test_unicode_text_and_subject(smtp_app: Flask, smtp_server: SmtpServer) -> None:
    mail.send("zoë@example.com", "Café – réinitialisation", "Naïve café ✓")
    [message] = smtp_server.wait_for(1)
    assert message["Subject"] == "Café – réinitialisation"
    assert message.get_content().strip() == "Naïve café ✓"


@pytest.mark.parametrize(
    ("to", "subject"),
    [
        ("ada@example.com\r\nBcc: eve@example.com", "Hello"),
        ("ada@example.com", "Hello\r\nBcc: eve@example.com"),
        ("ada@example.com\nBcc: eve@example.com", "Hello"),
    ],
)
def test_line_breaks_in_headers_are_refused(
    smtp_app: Flask, smtp_server: SmtpServer, to: str, subject: str
) -> None:
    with pytest.raises(ValueError, match="line break"):
        mail.send(to, subject, "text")
    assert smtp_server.messages == []


def test_failures_raise(smtp_app: Flask) -> None:
    smtp_app.config["PORTAL_MAIL_PORT"] = 1  # nothing listens there
    with pytest.raises(mail.MailError, match=r"SMTP 127\.0\.0\.1:1"):
        mail.send("ada@example.com", "Hello", "text")


def test_only_the_mail_queue_sends() -> None:
    """Every email goes through the durable queue: nothing else in the package calls the
    sender (a direct send is lost when SMTP is down)."""
    package = Path(mail.__file__).parent
    callers = sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if re.search(r"\bmail\.send\b|from portal\.mail import|\bsmtplib\b", path.read_text())
    )
    assert callers == ["mail.py", "mail_queue.py"]


@pytest.mark.parametrize(
    "setting",
    [{"PORTAL_MAIL_USE_TLS": True}, {"PORTAL_MAIL_USERNAME": "user", "PORTAL_MAIL_PASSWORD": "pw"}],
    ids=["starttls", "login"],
)
def test_tls_and_login_are_used_when_configured(
    smtp_app: Flask, smtp_server: SmtpServer, setting: dict[str, Any]
) -> None:
    """The test server offers neither STARTTLS nor AUTH: asking for them must fail, not skip."""
    smtp_app.config.update(setting)
    with pytest.raises(mail.MailError):
        mail.send("ada@example.com", "Hello", "text")
    assert smtp_server.messages == []


def test_without_a_server_mail_goes_to_the_outbox(outbox_app: Flask, tmp_path: Path) -> None:
    mail.send("ada@example.com", "Hello", "A link: https://example.test/x")
    [path] = (tmp_path / "outbox").glob("*.eml")
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert message["To"] == "ada@example.com"
    assert message["Subject"] == "Hello"
    assert "https://example.test/x" in message.get_content()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_the_default_outbox_is_in_the_instance_folder(tmp_path: Path) -> None:
    app = _app(tmp_path)
    with app.app_context():
        assert mail.outbox_path() == Path(app.instance_path) / "outbox"
        db.engine.dispose()

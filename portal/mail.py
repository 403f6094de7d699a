"""Sending email: SMTP when ``PORTAL_MAIL_SERVER`` is set, otherwise (development) a ``.eml``
file in ``instance/outbox/`` (or ``PORTAL_MAIL_OUTBOX``).

:func:`send` raises :class:`MailError` when the message cannot be handed over.  Only
``portal.mail_queue`` calls it: every email is queued with the action that causes it and sent
(and retried) from the queue, so a mail problem never loses a message nor turns a done action
into an error page.  Nothing here logs the body (it may hold a reset link: docs/security.md LG-02).
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
import uuid
from email.message import EmailMessage
from email.utils import formatdate
from email.utils import make_msgid
from email.utils import parseaddr
from pathlib import Path

from flask import current_app

from portal import clock

log = logging.getLogger(__name__)


class MailError(RuntimeError):
    """The message could not be sent (or written to the outbox)."""


def _header(name: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        # header injection (docs/security.md UP-06)
        raise ValueError(f"line break in the {name} header")
    return value


def build(to: str, subject: str, text: str) -> EmailMessage:
    cfg = current_app.config
    sender = _header("From", str(cfg["PORTAL_MAIL_SENDER"]))
    message = EmailMessage()
    message["From"] = sender
    message["To"] = _header("To", to)
    message["Subject"] = _header("Subject", subject)
    message["Date"] = formatdate(localtime=False)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(domain=domain)
    if text.isascii() and all(len(line) <= 998 for line in text.splitlines()):
        # Plain 7bit keeps long lines (a reset link) whole in the raw message and the outbox
        # files; quoted-printable would split them with soft line breaks.
        message.set_content(text, cte="7bit")
    else:
        message.set_content(text)
    return message


def send(to: str, subject: str, text: str) -> None:
    """Send one plain-text message to ``to``; raises MailError (ValueError for CR/LF)."""
    message = build(to, subject, text)
    cfg = current_app.config
    if cfg["PORTAL_MAIL_SERVER"]:
        _send_smtp(message)
    else:
        _write_outbox(message)


def _send_smtp(message: EmailMessage) -> None:
    cfg = current_app.config
    host, port = str(cfg["PORTAL_MAIL_SERVER"]), int(cfg["PORTAL_MAIL_PORT"])
    try:
        with smtplib.SMTP(host, port, timeout=float(cfg["PORTAL_MAIL_TIMEOUT"])) as smtp:
            if cfg["PORTAL_MAIL_USE_TLS"]:
                smtp.starttls(context=ssl.create_default_context())
            if cfg["PORTAL_MAIL_USERNAME"]:
                smtp.login(str(cfg["PORTAL_MAIL_USERNAME"]), str(cfg["PORTAL_MAIL_PASSWORD"] or ""))
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"SMTP {host}:{port}: {exc.__class__.__name__}: {exc}") from exc
    log.info("mail sent via %s:%s: %s", host, port, message["Subject"])


def outbox_path() -> Path:
    configured = current_app.config["PORTAL_MAIL_OUTBOX"]
    return Path(configured) if configured else Path(current_app.instance_path) / "outbox"


def _write_outbox(message: EmailMessage) -> None:
    folder = outbox_path()
    if current_app.config["PORTAL_ENV"] != "development" and not current_app.testing:
        log.warning("PORTAL_MAIL_SERVER is not set: mail is written to %s, not sent", folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        stamp = clock.now().strftime("%Y%m%dT%H%M%S%fZ")
        path = folder / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
        # 0600: a reset link in the outbox is as good as a password for an hour
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(message.as_bytes())
    except OSError as exc:
        raise MailError(f"could not write to the outbox {folder}: {exc}") from exc
    log.info("mail written to %s: %s", path, message["Subject"])

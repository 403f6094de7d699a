"""A real SMTP server for tests: aiosmtpd on a free local port, collecting what it receives.

``smtp_server`` is registered for the whole suite in ``tests/conftest.py``.  Point an app at it
with ``PORTAL_MAIL_SERVER="127.0.0.1"`` and ``PORTAL_MAIL_PORT=smtp_server.port``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

HOST = "127.0.0.1"


@dataclass
class Received:
    """One message as the server got it: the parsed message and the SMTP envelope."""

    message: EmailMessage
    mail_from: str
    rcpt_tos: list[str]


@dataclass
class SmtpServer:
    host: str
    port: int
    received: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _controller: Controller | None = None

    def stop(self) -> None:
        """Take the server down (connections are refused) until :meth:`start`."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def start(self) -> None:
        """(Re)start the server on the same port, keeping what it received."""
        if self._controller is None:
            controller = Controller(_Collector(self), hostname=self.host, port=self.port)
            controller.start()
            self._controller = controller

    @property
    def messages(self) -> list[EmailMessage]:
        with self._lock:
            return [r.message for r in self.received]

    @property
    def recipients(self) -> list[str]:
        """Every envelope recipient of every message, in order."""
        with self._lock:
            return [to for r in self.received for to in r.rcpt_tos]

    def clear(self) -> None:
        with self._lock:
            self.received.clear()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        """The messages once at least ``count`` have arrived (fails after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} message(s), got {len(self.messages)}")
            time.sleep(0.01)
        return self.messages


class _Collector:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        content = envelope.content.replace(b"\r\n", b"\n")  # SMTP's line ends, as Python's
        parsed = BytesParser(policy=policy.default).parsebytes(content)
        assert isinstance(parsed, EmailMessage)
        item = Received(parsed, envelope.mail_from, list(envelope.rcpt_tos))
        with self.server._lock:
            self.server.received.append(item)
        return "250 OK"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A running SMTP server on a free local port; ``.messages`` lists what it received."""
    for attempt in range(5):
        server = SmtpServer(HOST, _free_port())
        try:
            server.start()
        except (OSError, RuntimeError):  # the port was taken between choosing and binding
            if attempt == 4:
                raise
            continue
        break
    try:
        yield server
    finally:
        server.stop()


def smtp_settings(
    request: pytest.FixtureRequest,
    settings: dict[str, Any],
    server: SmtpServer,
    outbox: Path,
    base_url: str,
) -> dict[str, Any]:
    """The suite's settings with mail going to ``server`` (a test's ``config`` markers win)."""
    values = {
        **settings,
        "PORTAL_MAIL_SERVER": "127.0.0.1",
        "PORTAL_MAIL_PORT": server.port,
        "PORTAL_MAIL_OUTBOX": str(outbox),
        "PORTAL_BASE_URL": base_url,
    }
    for marker in reversed(list(request.node.iter_markers("config"))):
        values.update(marker.kwargs)
    return values

"""Mail written by these tests (no SMTP server configured) goes to the test's own directory,
never to the repository's instance/outbox; queued mail is delivered before the test ends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from portal import background


@pytest.fixture(autouse=True)
def _own_outbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[None]:
    if "app" not in request.fixturenames:  # a test without an app sends nothing
        yield
        return
    app = request.getfixturevalue("app")
    app.config["PORTAL_MAIL_OUTBOX"] = str(tmp_path / "outbox")
    yield
    background.wait_idle(app)

"""Rate-limit storage out of reach degrades, never breaks (the spec's §8; issue 10, finding 2).

With ``PORTAL_RATELIMIT_STORAGE`` pointing at a closed port, the rate-limited POSTs answer as
they do with memory storage (they were 500s), the limits still hold (in this process's memory),
Flask-Limiter's warning reaches the log once, not once per request, and when Redis answers
again the counts go back to it.  Redis is real: a TCP forwarder (tests/tcp_proxy.py) in front
of it is switched off and on, so "Redis returns" happens on the same address.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from portal import background
from portal import create_app
from portal import ratelimit
from portal.extensions import db
from portal.extensions import limiter
from tests.accounts.test_rate_limit_storage import REDIS_URL
from tests.accounts.test_rate_limit_storage import _redis_reachable
from tests.conftest import base_settings
from tests.factories import login
from tests.factories import message_codes
from tests.helpdesk.conftest import post_contact
from tests.helpdesk.conftest import resend_data
from tests.live_server import free_port
from tests.tcp_proxy import tcp_proxy

FALLING_BACK = "Rate limit storage unreachable - falling back to in-memory storage"
#: How long Redis may take to be used again once it answers (Flask-Limiter tries a dead
#: storage again after 1 s, then 2, 4 … s while it stays dead; here it was dead for < 1 s).
RECOVERY_SECONDS = 20.0


def _settings(database_url: str, tmp_path: Path, storage: str, **more: Any) -> dict[str, Any]:
    return {
        **base_settings(database_url),
        "RATELIMIT_ENABLED": True,
        "PORTAL_RATELIMIT_STORAGE": storage,
        "PORTAL_MAIL_OUTBOX": str(tmp_path / "outbox"),
        **more,
    }


@pytest.fixture
def make_app() -> Iterator[Callable[..., Flask]]:
    made: list[Flask] = []

    def _make(settings: dict[str, Any]) -> Flask:
        app = create_app(settings)
        made.append(app)
        return app

    yield _make
    for app in made:
        background.shutdown(app)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def throttle() -> Iterator[list[float]]:
    """The limiter's log throttle, on a clock the test moves (a list of one number)."""
    now = [1000.0]
    found = ratelimit.install_log_throttle()
    found.reset(clock=lambda: now[0])
    yield now
    found.reset(clock=time.monotonic)


POSTS: dict[str, Callable[[FlaskClient], TestResponse]] = {
    "login": lambda c: login(c, "someone", "wrong password"),
    "password reset": lambda c: c.post(
        "/password-reset", data={"user_id": "someone", "email": "someone@example.com"}
    ),
    "contact us": lambda c: post_contact(c),
    "resend admin user id": lambda c: c.post("/helpdesk/resend-admin-user-id", data=resend_data()),
    "newsletter": lambda c: c.post("/newsletter", data={"email": "reader@example.com"}),
}


@pytest.mark.parametrize("form", list(POSTS))
def test_each_limited_post_answers_as_usual_with_redis_unreachable(
    database_url: str,
    tmp_path: Path,
    make_app: Callable[..., Flask],
    throttle: list[float],
    caplog: pytest.LogCaptureFixture,
    form: str,
) -> None:
    """Each POST behind a rate limit answers as it does with memory storage (it was a 500)."""
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    expected = POSTS[form](make_app(_settings(database_url, tmp_path, "memory://")).test_client())
    assert expected.status_code < 500
    app = make_app(_settings(database_url, tmp_path, dead))
    client = app.test_client()
    with caplog.at_level(logging.WARNING, logger=ratelimit.LOGGER_NAME):
        first = POSTS[form](client)
        second = POSTS[form](client)
    assert first.status_code == second.status_code == expected.status_code, first.text
    assert limiter.falling_back
    assert [r.getMessage() for r in caplog.records if r.name == ratelimit.LOGGER_NAME] == [
        FALLING_BACK
    ]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_the_limits_still_hold_in_memory(
    database_url: str, tmp_path: Path, make_app: Callable[..., Flask], throttle: list[float]
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    app = make_app(_settings(database_url, tmp_path, dead, PORTAL_LOGIN_RATE_LIMIT="3 per minute"))
    client = app.test_client()
    for _ in range(3):
        assert login(client, "someone", "wrong password").status_code == 200
    refused = login(client, "someone", "wrong password")
    assert refused.status_code == 429
    assert message_codes(refused) == ["LOGIN-09"]


def test_the_storage_is_used_again_when_it_returns_and_warnings_stay_one_a_minute(
    database_url: str,
    tmp_path: Path,
    make_app: Callable[..., Flask],
    throttle: list[float],
    caplog: pytest.LogCaptureFixture,
) -> None:
    if not _redis_reachable():
        pytest.skip(f"no Redis at {REDIS_URL} (CI has one)")
    real = redis.Redis.from_url(REDIS_URL)
    host, port = (
        real.connection_pool.connection_kwargs["host"],
        real.connection_pool.connection_kwargs["port"],
    )
    prefix = f"fallback-test-{uuid.uuid4().hex}"
    database = real.connection_pool.connection_kwargs.get("db", 0)

    def counted_in_redis() -> int:
        return len(real.keys(f"*{prefix}*"))

    with tcp_proxy((host, int(port)), started=False) as proxy:
        storage = f"redis://127.0.0.1:{proxy.port}/{database}"
        # How many logins the two recoveries take depends on how soon the storage is seen
        # back (the machine's load): a limit no run can reach keeps the test about recovery.
        app = make_app(
            _settings(
                database_url,
                tmp_path,
                storage,
                RATELIMIT_KEY_PREFIX=prefix,
                PORTAL_LOGIN_RATE_LIMIT="100000 per minute",
            )
        )
        client = app.test_client()
        with caplog.at_level(logging.INFO, logger=ratelimit.LOGGER_NAME):
            for _ in range(5):
                assert login(client, "someone", "wrong password").status_code == 200
            assert limiter.falling_back
            assert counted_in_redis() == 0

            proxy.start()  # Redis is back
            deadline = time.monotonic() + RECOVERY_SECONDS
            while limiter.falling_back:
                assert time.monotonic() < deadline, "Redis not used again"
                assert login(client, "someone", "wrong password").status_code == 200
                time.sleep(0.2)
            assert login(client, "someone", "wrong password").status_code == 200
            assert counted_in_redis() > 0

            proxy.stop()  # and gone again, within the same minute
            throttle[0] += 30
            for _ in range(3):
                assert login(client, "someone", "wrong password").status_code == 200
            assert limiter.falling_back
            throttle[0] += 31  # a minute after the first warning
            proxy.start()
            deadline = time.monotonic() + RECOVERY_SECONDS
            while limiter.falling_back:
                assert time.monotonic() < deadline, "Redis not used again"
                assert login(client, "someone", "wrong password").status_code == 200
                time.sleep(0.2)
            proxy.stop()
            assert login(client, "someone", "wrong password").status_code == 200
    for key in real.keys(f"*{prefix}*"):
        real.delete(key)
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name == ratelimit.LOGGER_NAME
    ]
    assert warnings == [FALLING_BACK, FALLING_BACK + " (1 more like this since the last one)"]
    recovered = [r for r in caplog.records if r.getMessage() == "Rate limit storage recovered"]
    assert len(recovered) == 2


def test_the_throttle_lets_one_warning_through_a_minute() -> None:
    now = [0.0]
    throttle = ratelimit.OncePerInterval(clock=lambda: now[0])
    logger = logging.getLogger("tests.throttle")

    def passes(message: str, level: int = logging.WARNING) -> str | None:
        record = logger.makeRecord(logger.name, level, __file__, 1, message, (), None)
        return record.getMessage() if throttle.filter(record) else None

    assert passes("storage gone") == "storage gone"
    now[0] = 59.9
    assert passes("storage gone") is None
    assert passes("storage gone") is None
    assert passes("another fault") == "another fault"  # counted apart
    assert passes("recovered", logging.INFO) == "recovered"  # below WARNING: always
    assert passes("recovered", logging.INFO) == "recovered"
    now[0] = 60.0
    assert passes("storage gone") == "storage gone (2 more like this since the last one)"
    assert passes("storage gone") is None
    now[0] = 130.0
    assert passes("storage gone") == "storage gone (1 more like this since the last one)"

"""The login rate limit works on shared storage (Redis), as several workers need (LK-10)."""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest
import redis

from portal import create_app
from portal.extensions import db
from tests.conftest import base_settings
from tests.factories import login
from tests.factories import message_codes

#: Its database is emptied by the test: use one nothing else needs.
REDIS_URL = os.environ.get("PORTAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _redis_reachable() -> bool:
    host_port = REDIS_URL.split("//", 1)[1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    try:
        with socket.create_connection((host, int(port or 6379)), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("storage", ["redis", "memory"])
def test_a_new_worker_sees_the_counts_only_with_shared_storage(
    database_url: str, storage: str
) -> None:
    """Each app start builds its limiter storage anew, as each worker process does.  With Redis
    the second "worker" sees the first one's attempts; with memory storage it does not (the
    control that shows this test can fail)."""
    if storage == "redis":
        if not _redis_reachable():
            pytest.skip(f"no Redis at {REDIS_URL} (CI has one)")
        # A database of its own, emptied first.
        redis.Redis.from_url(REDIS_URL).flushdb()
    settings: dict[str, Any] = {
        **base_settings(database_url),
        "RATELIMIT_ENABLED": True,
        "PORTAL_RATELIMIT_STORAGE": REDIS_URL if storage == "redis" else "memory://",
        "PORTAL_LOGIN_RATE_LIMIT": "3 per minute",
    }
    first = create_app(settings)
    with first.app_context():
        for _ in range(3):
            assert login(first.test_client(), "someone", "wrong password").status_code == 200
        db.engine.dispose()
    second = create_app(settings)
    with second.app_context():
        response = login(second.test_client(), "someone", "wrong password")
        if storage == "redis":
            assert response.status_code == 429
            assert message_codes(response) == ["LOGIN-09"]
        else:
            assert response.status_code == 200
        db.engine.dispose()

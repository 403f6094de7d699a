"""The rate-limit storage (Redis) gone mid-traffic and back, against a real gunicorn with 2
workers: logins go on (the limits fall back to each worker's memory, fail-open), never a 5xx,
and once Redis answers again the workers count there again (issue 10, points 2 and 8)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
from flask import Flask

from portal.ratelimit import OncePerInterval
from tests.concurrency.test_login_concurrency import LOGIN
from tests.factories import PASSWORD
from tests.factories import make_org
from tests.factories import make_user
from tests.faults.processes import figure
from tests.faults.processes import wait_until
from tests.faults.redis_server import RedisServer
from tests.faults.redis_server import redis_server  # noqa: F401  (fixture)
from tests.faults.traffic import Traffic
from tests.live_server import gunicorn

pytestmark = pytest.mark.slow

CLIENTS = 4
#: Login rounds with Redis down, then with Redis back.
ROUNDS = 40
#: Redis comes back empty; the workers must use it again within this long (Flask-Limiter
#: probes a dead storage with a growing back-off).
BACK_SECONDS = 120


def test_logins_go_on_while_redis_is_down_and_use_it_again_when_back(
    app: Flask,
    database_url: str,
    tmp_path: Path,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    org = make_org("Redis Down Ltd")
    users = [make_user(org, user_id=f"redis.user{i}").user_id for i in range(CLIENTS)]
    env = {
        "PORTAL_RATELIMIT_ENABLED": "true",
        "PORTAL_RATELIMIT_STORAGE": redis_server.url,
        # Counted, never reached by this traffic: the point is where the counts live.
        "PORTAL_LOGIN_RATE_LIMIT": "100000 per hour",
    }
    log_path = tmp_path / "gunicorn.log"
    with gunicorn(database_url, log_path, workers=2, threads=4, ready_path=LOGIN, env=env) as base:
        with Traffic(base, users, PASSWORD) as traffic:
            traffic.wait_for_more(CLIENTS, timeout=120, what="traffic with Redis up")
            assert redis_server.keys() > 0  # the limits are counted in Redis
            before = traffic.snapshot()

            redis_server.stop()
            traffic.wait_for_more(ROUNDS, timeout=120, what="logins with Redis down")
            down = traffic.snapshot()
            down_errors = dict(traffic.server_errors)

            redis_server.start()  # empty, on the same port
            wait_until(
                lambda: redis_server.keys() > 0,
                timeout=BACK_SECONDS,
                what="the workers to count in Redis again",
            )
            traffic.wait_for_more(ROUNDS, timeout=120, what="logins with Redis back")
        after = traffic.snapshot()

    assert not traffic.errors, traffic.errors[:3]
    assert not down_errors, down_errors
    assert not traffic.server_errors, dict(traffic.statuses)
    rounds_down, logins_down = down[0] - before[0], down[1] - before[1]
    assert logins_down == rounds_down  # every round while Redis was down logged in
    assert after[1] == after[0]  # and every round in the whole test: nothing lost
    figure(
        database_url,
        f"redis down: {rounds_down} login rounds ({logins_down} logins), 0 5xx, 0 lost; "
        f"redis back: used again, {after[0] - down[0]} more rounds, 0 5xx",
    )


def test_a_swallowed_storage_error_is_one_line_without_its_traceback() -> None:
    """Flask-Limiter logs "Failed to rate limit. Swallowing error" with the traceback of the
    Redis error (a connection reset mid-command): the log gets one line naming the error."""
    throttle = OncePerInterval(clock=lambda: 0.0)
    try:
        raise ConnectionResetError(104, "Connection reset by peer")
    except ConnectionResetError:
        record = logging.getLogger("flask-limiter").makeRecord(
            "flask-limiter",
            logging.ERROR,
            __file__,
            1,
            "Failed to rate limit. Swallowing error",
            (),
            sys.exc_info(),
        )
    assert throttle.filter(record)
    assert record.exc_info is None
    assert record.getMessage() == (
        "Failed to rate limit. Swallowing error: ConnectionResetError: "
        "[Errno 104] Connection reset by peer"
    )
    assert "Traceback" not in logging.Formatter().format(record)

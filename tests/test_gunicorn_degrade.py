"""Against a real gunicorn with the production config file (deploy/gunicorn.conf.py):

- Redis unreachable (issue 10, finding 2): logins go on (no 5xx, the right password logs in),
  and the log has the limiter's warning at most once per worker, no traceback;
- no ``Server`` header (finding 8).
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from flask import Flask

from portal.extensions import db
from tests.concurrency.test_login_concurrency import LOGIN
from tests.concurrency.test_login_concurrency import REQUEST_TIMEOUT
from tests.concurrency.test_login_concurrency import open_login
from tests.concurrency.test_login_concurrency import post_login
from tests.factories import PASSWORD
from tests.factories import make_user
from tests.live_server import free_port
from tests.live_server import gunicorn

pytestmark = pytest.mark.slow  # a real gunicorn

FALLING_BACK = "Rate limit storage unreachable - falling back to in-memory storage"
CLIENTS = 4
ATTEMPTS = 10  # wrong passwords per client, then one right one


def test_logins_go_on_with_redis_unreachable(app: Flask, tmp_path: Path) -> None:
    users = [make_user() for _ in range(CLIENTS)]
    user_ids = [u.user_id for u in users]
    db.session.rollback()  # hold no transaction while the server works (SQLite)
    log_path = tmp_path / "gunicorn.log"
    env = {
        "PORTAL_RATELIMIT_ENABLED": "true",
        "PORTAL_RATELIMIT_STORAGE": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens
        "PORTAL_LOGIN_RATE_LIMIT": "1000 per minute",
    }
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    with gunicorn(url, log_path, workers=2, threads=4, ready_path=LOGIN, env=env) as base:

        def client(user_id: str) -> list[int]:
            with requests.Session() as http:
                token = open_login(http, base)
                statuses = [
                    post_login(http, base, user_id, "wrong password", token).status
                    for _ in range(4)  # fewer than 5: no lockout
                ]
                statuses += [
                    post_login(http, base, "nobody-" + user_id, "wrong password", token).status
                    for _ in range(ATTEMPTS - 4)
                ]
                right = post_login(http, base, user_id, PASSWORD, token)
                return [*statuses, right.status if right.location else -right.status]

        with ThreadPoolExecutor(CLIENTS) as pool:
            results = list(pool.map(client, user_ids))
    log = log_path.read_text()
    statuses = [s for result in results for s in result]
    print(f"\nRedis unreachable: {len(statuses)} login POSTs on 2 workers: {sorted(set(statuses))}")
    assert all(result[:-1] == [200] * ATTEMPTS for result in results), results
    assert all(result[-1] == 302 for result in results), results  # logged in
    assert 1 <= log.count(FALLING_BACK) <= 2, log  # once per worker that saw the fault
    assert not re.search(r'"POST [^"]*" 5\d\d ', log), log


def test_no_server_header(database_url: str, tmp_path: Path) -> None:
    log_path = tmp_path / "gunicorn.log"
    with gunicorn(database_url, log_path, workers=1, threads=2, ready_path=LOGIN) as base:
        responses = [
            requests.get(base + LOGIN, timeout=REQUEST_TIMEOUT),
            requests.get(base + "/no-such-page", timeout=REQUEST_TIMEOUT),
            requests.get(base + "/portal", timeout=REQUEST_TIMEOUT, allow_redirects=False),
        ]
    assert [r.status_code for r in responses] == [200, 404, 308]
    for response in responses:
        assert "Server" not in response.headers, response.headers

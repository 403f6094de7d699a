"""/healthz and /readyz (docs/rules.md §8–§9): readiness follows the database within one request, on
SQLite and PostgreSQL; no cookie, no rate limit, no version in the bodies."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask_migrate
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine
from sqlalchemy import text

from portal import create_app
from portal.extensions import db
from portal.extensions import limiter
from portal.ops.figures import version
from tests.conftest import PG_URL
from tests.conftest import base_settings
from tests.live_server import free_port
from tests.tcp_proxy import tcp_proxy

PREVIOUS = "0009_user_search"  # an older revision than the code's head
REDIS_URL = os.environ.get("PORTAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
only_postgresql = pytest.mark.skipif(not PG_URL, reason="needs PORTAL_TEST_DATABASE_URL")


def _no_leaks(response: Any) -> None:
    assert "Set-Cookie" not in response.headers
    assert response.headers["Content-Type"] == "application/json"
    assert "version" not in response.text
    assert version() not in response.text
    assert response.headers["X-Request-ID"]


@contextlib.contextmanager
def stored_revision(database_url: str, revision: str) -> Iterator[None]:
    """The database claims ``revision`` for the duration of the block (then its own again)."""
    engine = create_engine(database_url)
    with engine.begin() as conn:
        before = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": before})
        engine.dispose()


@contextlib.contextmanager
def app_on(url: str, **extra: Any) -> Iterator[Flask]:
    app = create_app({**base_settings(url), **extra})
    with app.app_context():
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()


def test_liveness_and_readiness_answer_200_without_cookie_or_version(client: FlaskClient) -> None:
    live = client.get("/healthz")
    assert (live.status_code, live.json) == (200, {"status": "ok"})
    _no_leaks(live)
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json == {"status": "ok", "checks": {"database": "ok", "redis": "not_used"}}
    _no_leaks(ready)


def test_a_schema_behind_the_code_is_not_ready_then_ready_at_once(
    client: FlaskClient, database_url: str
) -> None:
    with stored_revision(database_url, PREVIOUS):
        behind = client.get("/readyz")
        assert behind.status_code == 503
        assert behind.json["checks"]["database"] == "behind"
        assert behind.json["status"] == "unavailable"
        _no_leaks(behind)
        assert client.get("/healthz").status_code == 200  # liveness does not care
    assert client.get("/readyz").status_code == 200  # the very next probe


def test_a_schema_ahead_of_the_code_stays_ready_with_a_warning(
    client: FlaskClient, database_url: str
) -> None:
    with stored_revision(database_url, "9999_from_a_newer_release"):
        ahead = client.get("/readyz")
    assert ahead.status_code == 200
    assert ahead.json["checks"]["database"] == "ahead"
    assert ahead.json["status"] == "degraded"
    assert "newer than this code" in ahead.json["warnings"][0]
    assert "9999" not in ahead.text


def test_sqlite_unmigrated_is_not_ready_until_migrated(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.sqlite'}"
    with app_on(url) as app:
        client = app.test_client()
        first = client.get("/readyz")
        assert (first.status_code, first.json["checks"]["database"]) == (503, "unmigrated")
        assert client.get("/healthz").status_code == 200
        flask_migrate.upgrade()
        assert client.get("/readyz").status_code == 200


def test_sqlite_unreachable_is_not_ready(tmp_path: Path) -> None:
    with app_on(f"sqlite:///{tmp_path / 'no-such-folder' / 'portal.sqlite'}") as app:
        client = app.test_client()
        answer = client.get("/readyz")
        assert (answer.status_code, answer.json["checks"]["database"]) == (503, "unreachable")
        _no_leaks(answer)
        assert "no-such-folder" not in answer.text
        assert client.get("/healthz").status_code == 200


@only_postgresql
def test_postgresql_unmigrated_is_not_ready(postgres_migrated: str) -> None:
    """An empty schema of the same database stands for a fresh, unmigrated one."""
    database_url = postgres_migrated
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS readyz_empty CASCADE"))
        conn.execute(text("CREATE SCHEMA readyz_empty"))
    engine.dispose()
    try:
        empty = {"connect_args": {"options": "-csearch_path=readyz_empty"}}
        with app_on(database_url, SQLALCHEMY_ENGINE_OPTIONS=empty) as app:
            answer = app.test_client().get("/readyz")
            assert (answer.status_code, answer.json["checks"]["database"]) == (503, "unmigrated")
    finally:
        engine = create_engine(database_url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA readyz_empty CASCADE"))
        engine.dispose()


@only_postgresql
def test_postgresql_gone_and_back_is_seen_within_one_request(postgres_migrated: str) -> None:
    """The server's port closes (every connection cut), then opens again: the first probe
    after each change says so, with connections in the pool from before."""
    database_url = postgres_migrated
    target_port = create_engine(database_url).url.port or 5432
    with tcp_proxy(("127.0.0.1", target_port)) as proxy:
        url = create_engine(database_url).url.set(host="127.0.0.1", port=proxy.port)
        with app_on(url.render_as_string(hide_password=False)) as app:
            client = app.test_client()
            for _ in range(3):  # pooled connections through the proxy
                assert client.get("/readyz").status_code == 200
            proxy.stop()
            gone = client.get("/readyz")
            assert (gone.status_code, gone.json["checks"]["database"]) == (503, "unreachable")
            assert client.get("/healthz").status_code == 200
            proxy.start()
            assert client.get("/readyz").status_code == 200


def test_postgresql_closed_port_is_not_ready() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    with app_on(url) as app:
        answer = app.test_client().get("/readyz")
        assert (answer.status_code, answer.json["checks"]["database"]) == (503, "unreachable")
        _no_leaks(answer)


@pytest.fixture
def default_limit_forgotten() -> Iterator[None]:
    """Flask-Limiter's singleton keeps a default limit from one app to the next: drop it."""
    yield
    limiter.limit_manager.set_default_limits([])


@pytest.mark.usefixtures("default_limit_forgotten")
@pytest.mark.config(
    RATELIMIT_ENABLED=True,
    RATELIMIT_DEFAULT="2 per minute",
    RATELIMIT_STORAGE_URI="memory://",
    PORTAL_METRICS_TOKEN="token-for-the-scraper",
)
def test_probes_and_metrics_are_never_rate_limited(client: FlaskClient) -> None:
    scraper = {"Authorization": "Bearer token-for-the-scraper"}
    for _ in range(6):
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
        assert client.get("/metrics", headers=scraper).status_code == 200
    assert client.get("/guides/").status_code == 200
    assert client.get("/guides/").status_code == 200
    assert client.get("/guides/").status_code == 429  # the default limit holds elsewhere


@pytest.mark.config(PORTAL_RATELIMIT_STORAGE=f"redis://127.0.0.1:{free_port()}/0")
def test_redis_down_is_degraded_but_ready(client: FlaskClient) -> None:
    answer = client.get("/readyz")
    assert answer.status_code == 200
    assert answer.json == {"status": "degraded", "checks": {"database": "ok", "redis": "degraded"}}


def test_redis_up_is_ok(app: Flask, client: FlaskClient) -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {REDIS_URL} (CI has one)")
    app.config["PORTAL_RATELIMIT_STORAGE"] = REDIS_URL
    answer = client.get("/readyz")
    assert answer.status_code == 200
    assert json.loads(answer.text)["checks"]["redis"] == "ok"


@pytest.mark.parametrize("host", ["10.0.0.5:8000", "127.0.0.1", "[::1]:8000"])
def test_probes_addressed_by_ip_answer(client: FlaskClient, host: str) -> None:
    """A load balancer probes each node by its address, not the site's name."""
    for path in ("/healthz", "/readyz"):
        answer = client.get(path, headers={"Host": host})
        assert answer.status_code == 200, (path, host)
        assert "Set-Cookie" not in answer.headers

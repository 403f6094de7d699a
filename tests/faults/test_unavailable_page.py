"""What a request gets while the database cannot be reached: a 503 with Retry-After (a page for
browsers, a short body for HTMX and JSON clients) and one log line, never a 500 with a
traceback; and the next request after the database is back works in the same process."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from portal import PG_CONNECT_TIMEOUT
from portal import background
from portal import create_app
from portal import errors
from portal.db import is_outage
from portal.db import outage_summary
from portal.extensions import db
from tests.conftest import BACKENDS
from tests.conftest import PG_URL
from tests.conftest import FreshContextClient
from tests.conftest import _truncate_postgres
from tests.conftest import base_settings
from tests.factories import PASSWORD
from tests.factories import make_user
from tests.live_server import free_port

LOGIN = "/portal/login"


def _post_login(client: FlaskClient, **headers: str) -> object:
    return client.post(LOGIN, data={"user_id": "someone", "password": PASSWORD}, headers=headers)


def _assert_unavailable(response: object) -> None:
    assert response.status_code == 503  # type: ignore[attr-defined]
    assert response.headers["Retry-After"] == str(errors.RETRY_AFTER_SECONDS)  # type: ignore[attr-defined]
    assert response.headers["Cache-Control"] == "no-store"  # type: ignore[attr-defined]


def _outage_client(url: str) -> FlaskClient:
    app = create_app(base_settings(url))
    app.test_client_class = FreshContextClient
    return app.test_client()


@pytest.fixture(params=BACKENDS)
def unreachable_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database that cannot be reached: a SQLite file in a folder that is not there (a
    volume not mounted), or a PostgreSQL server that refuses connections."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'not-mounted' / 'portal.sqlite'}"
    return f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/portal"


def test_pages_htmx_and_json_get_a_503(
    unreachable_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = _outage_client(unreachable_url)
    with caplog.at_level(logging.WARNING):
        page = _post_login(client)
        fragment = _post_login(client, **{"HX-Request": "true"})
        data = client.get("/portal/", headers={"Accept": "application/json"})
        home = client.get("/portal/")  # the session's user cannot be loaded either
    for response in (page, fragment):
        _assert_unavailable(response)
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "Service unavailable" in html
    assert errors.UNAVAILABLE_TEXT in html
    assert fragment.mimetype == "text/plain"
    assert fragment.get_data(as_text=True) == errors.UNAVAILABLE_TEXT + "\n"
    # Anonymous: no session user to load, so the login redirect does not need the database.
    assert data.status_code == home.status_code == 302
    lines = [r for r in caplog.records if r.name == "portal.errors"]
    assert [r.levelno for r in lines] == [logging.WARNING, logging.WARNING]
    assert all(r.exc_info is None for r in lines)  # one line, no traceback
    assert all("database unavailable on POST /portal/login: " in r.getMessage() for r in lines)
    assert all("\n" not in r.getMessage() for r in lines)


def test_a_signed_in_page_and_a_json_client_get_a_503_then_recover(
    tmp_path: Path, sqlite_template: Path
) -> None:
    """A signed-in session whose user cannot be loaded (the database's folder is gone, a
    file stands in its place): 503, the page rendered as for an anonymous visitor, JSON for
    JSON clients; the folder back, the same process serves the session again."""
    folder = tmp_path / "data"
    folder.mkdir()
    with sqlite3.connect(sqlite_template) as src, sqlite3.connect(folder / "portal.sqlite") as dst:
        src.backup(dst)
    client = _outage_client(f"sqlite:///{folder / 'portal.sqlite'}")
    app = client.application
    with app.app_context():
        user_id = make_user().user_id
        db.session.remove()
    answer = client.post(LOGIN, data={"user_id": user_id, "password": PASSWORD})
    assert answer.status_code == 302
    assert client.get("/portal/").status_code == 200
    with app.app_context():
        db.engine.dispose()  # the open connections would keep working on the moved file
    away = folder.rename(tmp_path / "away")
    folder.write_text("not a folder")
    try:
        page = client.get("/portal/")
        data = client.get("/portal/", headers={"Accept": "application/json"})
    finally:
        folder.unlink()
        away.rename(folder)
    _assert_unavailable(page)
    assert "Log out" not in page.get_data(as_text=True)
    _assert_unavailable(data)
    assert data.get_json() == {"error": "unavailable", "retry_after": errors.RETRY_AFTER_SECONDS}
    assert client.get("/portal/").status_code == 200  # back, in the same process, still signed in


def test_sqlite_recovers_without_a_restart(tmp_path: Path, sqlite_template: Path) -> None:
    """The folder appears (the volume is mounted): the same app serves at once."""
    folder = tmp_path / "not-mounted"
    client = _outage_client(f"sqlite:///{folder / 'portal.sqlite'}")
    _assert_unavailable(_post_login(client))
    folder.mkdir()
    with sqlite3.connect(sqlite_template) as src, sqlite3.connect(folder / "portal.sqlite") as dst:
        src.backup(dst)
    answer = _post_login(client)
    assert answer.status_code == 200  # the login page again: an unknown User ID, LOGIN-01
    assert "LOGIN-01" in answer.get_data(as_text=True)


def test_postgresql_connections_are_checked_and_time_out() -> None:
    """A dead pooled connection is replaced at checkout (pre-ping), and a server that does not
    answer is given up after PG_CONNECT_TIMEOUT seconds; a setting of the operator's wins."""
    url = "postgresql://postgres@127.0.0.1:5432/portal"
    options = create_app(base_settings(url)).config["SQLALCHEMY_ENGINE_OPTIONS"]
    assert options["pool_pre_ping"] is True
    assert options["connect_args"] == {"connect_timeout": PG_CONNECT_TIMEOUT}
    own = {"SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"connect_timeout": 30}}}
    options = create_app({**base_settings(url), **own}).config["SQLALCHEMY_ENGINE_OPTIONS"]
    assert options["connect_args"] == {"connect_timeout": 30}


def test_a_background_job_meeting_the_outage_logs_one_line(
    unreachable_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(base_settings(unreachable_url))

    def look_up() -> None:
        db.session.execute(text("SELECT 1"))

    with caplog.at_level(logging.WARNING), app.test_request_context():
        background.submit(look_up)
        background.wait_idle(app)
    background.shutdown(app)
    [line] = [r for r in caplog.records if r.name == "portal.background"]
    assert line.levelno == logging.WARNING
    assert line.exc_info is None
    assert "database unavailable" in line.getMessage()


@pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL (PORTAL_TEST_DATABASE_URL; set in CI)")
def test_a_connection_killed_after_the_last_statement_leaves_the_answer_alone(
    postgres_migrated: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The request read, then its connection was killed before the teardown's rollback: the
    answer is still the page, the log has one line, and the next request works."""
    _truncate_postgres(postgres_migrated)
    app = create_app(base_settings(postgres_migrated))

    def read_then_lose_the_connection() -> str:
        pid = db.session.scalar(text("SELECT pg_backend_pid()"))
        killer = create_engine(postgres_migrated)
        with killer.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        killer.dispose()
        return "read"

    app.add_url_rule("/test/read-then-killed", view_func=read_then_lose_the_connection)
    client = app.test_client()
    with caplog.at_level(logging.WARNING):
        answer = client.get("/test/read-then-killed")
    assert (answer.status_code, answer.get_data(as_text=True)) == (200, "read")
    [line] = [r for r in caplog.records if r.name == "portal.errors"]
    assert "database connection lost at the end of a request" in line.getMessage()
    assert line.exc_info is None
    assert client.get("/portal/login").status_code == 200
    with app.app_context():
        assert db.session.scalar(text("SELECT 1")) == 1
        db.session.remove()
        db.engine.dispose()


def test_a_mistake_in_a_statement_stays_a_500(app: Flask, database_url: str) -> None:
    """Only the database being away is an outage: a statement naming a table that does not
    exist is a bug (a 500 and a traceback in the log), on either database."""
    with pytest.raises(DBAPIError) as caught:
        db.session.execute(text("SELECT * FROM no_such_table"))
    db.session.rollback()
    assert not is_outage(caught.value)


@pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL (PORTAL_TEST_DATABASE_URL; set in CI)")
def test_a_killed_connection_is_an_outage(postgres_migrated: str) -> None:
    app = create_app(base_settings(postgres_migrated))
    with app.app_context():
        pid = db.session.scalar(text("SELECT pg_backend_pid()"))
        killer = create_engine(postgres_migrated)
        with killer.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        killer.dispose()
        with pytest.raises(DBAPIError) as caught:
            db.session.execute(text("SELECT 1"))
        with contextlib.suppress(DBAPIError):
            db.session.rollback()
        db.session.remove()
        db.engine.dispose()
    assert is_outage(caught.value)
    assert "\n" not in outage_summary(caught.value)

"""Request ids and the log format (docs/rules.md §8 "Operable"): an id made or taken from a trusted
proxy, echoed and shown on error pages; JSON lines in production, text in development."""

from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal import create_app
from portal import logs
from portal.extensions import db
from tests.conftest import base_settings
from tests.factories import login
from tests.factories import make_user
from tests.live_server import free_port

MADE = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger put back as it was (the app under test installs its handler there)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)


def test_every_response_has_a_new_request_id(client: FlaskClient) -> None:
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/guides/").headers["X-Request-ID"]
    assert MADE.fullmatch(first)
    assert MADE.fullmatch(second)
    assert first != second


def test_a_clients_request_id_is_ignored_without_a_trusted_proxy(client: FlaskClient) -> None:
    answer = client.get("/healthz", headers={"X-Request-ID": "chosen-by-the-client"})
    assert MADE.fullmatch(answer.headers["X-Request-ID"])


@pytest.mark.config(PORTAL_PROXY_FIX_HOPS=1)
@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("0f8e1c2d-3a4b-4c5d-9e6f-7a8b9c0d1e2f", True),
        ("nginx.1234:abcd", True),
        ("has spaces in it", False),
        ("x" * 129, False),
        ('quote"and\\slash', False),
        ("", False),
    ],
)
def test_a_trusted_proxys_request_id_is_taken_when_it_looks_like_one(
    client: FlaskClient, given: str, kept: bool
) -> None:
    answer = client.get("/healthz", headers={"X-Request-ID": given})
    echoed = answer.headers["X-Request-ID"]
    assert echoed == given if kept else MADE.fullmatch(echoed)


def test_error_pages_show_the_reference(client: FlaskClient) -> None:
    answer = client.get("/no/such/page")
    assert answer.status_code == 404
    reference = answer.headers["X-Request-ID"]
    assert f"<code>{reference}</code>" in answer.text
    assert "quote this reference" in answer.text.lower()


def test_the_format_is_json_in_production_and_text_in_development() -> None:
    assert logs.log_format({}) == "json"
    assert logs.log_format({"PORTAL_ENV": "production"}) == "json"
    assert logs.log_format({"PORTAL_ENV": "development"}) == "text"
    assert logs.log_format({"PORTAL_ENV": "development", "PORTAL_LOG_FORMAT": "JSON"}) == "json"
    assert logs.log_format({}, {"PORTAL_ENV": "development"}) == "text"
    with pytest.raises(ValueError, match="PORTAL_LOG_FORMAT"):
        logs.log_format({"PORTAL_LOG_FORMAT": "xml"})


def _app(database_url: str, **extra: Any) -> Flask:
    return create_app({**base_settings(database_url), **extra})


def test_json_lines_carry_time_level_logger_request_id_user_and_route(
    database_url: str, root_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    app = _app(database_url, PORTAL_LOG_FORMAT="json")

    @app.get("/log-something")
    def _log_something() -> str:
        from flask_login import current_user

        assert current_user.is_authenticated  # loaded, as any logged-in page does
        logging.getLogger("portal.example").warning('something "quoted"\nand more')
        return "ok"

    with app.app_context():
        user = make_user()
        client = app.test_client()
        login(client, user.user_id)
        capsys.readouterr()
        answer = client.get("/log-something")
        db.session.remove()
        db.engine.dispose()
    lines = [line for line in capsys.readouterr().err.splitlines() if line]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    [entry] = [e for e in entries if e["logger"] == "portal.example"]
    assert entry["level"] == "WARNING"
    assert entry["message"] == 'something "quoted"\nand more'
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])
    assert entry["request_id"] == answer.headers["X-Request-ID"]
    assert entry["user"] == user.id
    assert entry["route"] == "_log_something"
    assert root_logger.level == logging.INFO  # INFO lines are kept (they were dropped)


def test_python_warnings_become_log_lines(
    database_url: str, root_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    app = _app(database_url, PORTAL_LOG_FORMAT="json")
    with app.app_context():
        db.engine.dispose()
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("something deprecated", UserWarning, stacklevel=1)
    [entry] = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    assert (entry["logger"], entry["level"]) == ("py.warnings", "WARNING")
    assert "something deprecated" in entry["message"]


def test_text_lines_in_development(
    database_url: str, root_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    app = _app(url, PORTAL_ENV="development", PORTAL_LOG_FORMAT="text")
    with app.app_context():
        capsys.readouterr()
        answer = app.test_client().get("/readyz")  # logs a warning: the database is unreachable
        db.engine.dispose()
    err = capsys.readouterr().err
    line = next(line for line in err.splitlines() if "portal.ops.readiness" in line)
    assert re.match(r"\d{4}-\d\d-\d\dT[\d:.]+Z WARNING portal\.ops\.readiness: ", line)
    assert f"request_id={answer.headers['X-Request-ID']}" in line
    assert "route=ops.readyz" in line

"""The development server's (werkzeug) access log redacts tokens as gunicorn's does (issue 10,
finding 8): one function, portal.log_redaction.redact_tokens, used by both; and every route
with a ``<token>`` part is covered, so a new token link cannot be logged by mistake."""

from __future__ import annotations

import logging
import runpy
import threading
from collections.abc import Iterator

import pytest
import requests
from flask import Flask
from werkzeug.serving import make_server

from portal import log_redaction
from portal.log_redaction import redact_tokens
from tests.live_server import REPO

SECRET = "TokenThatMustNeverBeLogged0123456789abcdefghij"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (f"GET /password-reset/{SECRET} HTTP/1.1", "GET /password-reset/[token] HTTP/1.1"),
        (f"GET /newsletter/confirm/{SECRET}?x=1", "GET /newsletter/confirm/[token]?x=1"),
        (f"/newsletter/unsubscribe/{SECRET}", "/newsletter/unsubscribe/[token]"),
        (f"/helpdesk/status/{SECRET}", "/helpdesk/status/[token]"),
        ("GET /password-reset/new HTTP/1.1", "GET /password-reset/new HTTP/1.1"),
        ("GET /password-reset HTTP/1.1", "GET /password-reset HTTP/1.1"),
        ("GET /portal/login HTTP/1.1", "GET /portal/login HTTP/1.1"),
    ],
)
def test_redact_tokens(line: str, expected: str) -> None:
    assert redact_tokens(line) == expected


def test_every_token_route_is_redacted(app: Flask) -> None:
    """Each route with a ``<token>``-like part, built with a secret, logs without it."""
    token_rules = [
        rule
        for rule in app.url_map.iter_rules()
        if any("token" in argument for argument in rule.arguments)
    ]
    assert len(token_rules) >= 3  # the reset link, newsletter confirm and unsubscribe
    for rule in token_rules:
        # the token-like parts carry the secret; any other part (a user's id) a plain number
        values = {a: SECRET if "token" in a else 7 for a in rule.arguments}
        _, path = rule.build(values)
        assert SECRET in path
        assert SECRET not in redact_tokens(f'"GET {path} HTTP/1.1" 302 -'), rule.rule


def test_gunicorn_uses_the_same_function() -> None:
    config = runpy.run_path(str(REPO / "deploy" / "gunicorn.conf.py"))
    assert config["redact_tokens"] is log_redaction.redact_tokens


@pytest.fixture
def dev_server(app: Flask) -> Iterator[str]:
    """werkzeug's development server (what ``flask run`` serves with) on the test's app."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def test_the_development_server_log_redacts_tokens(
    dev_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    paths = [
        f"/password-reset/{SECRET}",
        f"/newsletter/confirm/{SECRET}",
        f"/newsletter/unsubscribe/{SECRET}",
    ]
    with caplog.at_level(logging.INFO, logger=log_redaction.WERKZEUG_LOGGER):
        for path in paths:
            requests.get(dev_server + path, timeout=30, allow_redirects=False)
        requests.get(dev_server + "/password-reset/new", timeout=30, allow_redirects=False)
    lines = [r.getMessage() for r in caplog.records if r.name == log_redaction.WERKZEUG_LOGGER]
    text = "\n".join(lines)
    assert SECRET not in text
    for path in paths:
        redacted = path.replace(SECRET, "[token]")
        assert any(f"GET {redacted} HTTP/1.1" in line for line in lines), text
    assert any("GET /password-reset/new HTTP/1.1" in line for line in lines), text


def test_nothing_else_is_changed() -> None:
    record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1, '"%s" %s', ("x", 200), None)
    assert log_redaction.TokenRedactingFilter().filter(record)
    assert (record.msg, record.args) == ('"%s" %s', ("x", 200))


def test_the_filter_sits_on_the_werkzeug_logger(app: Flask) -> None:
    """On werkzeug's logger itself (not on one handler), so any handler, its own stderr one
    included, gets the redacted text; create_app puts it there."""
    logger = logging.getLogger(log_redaction.WERKZEUG_LOGGER)
    assert any(isinstance(f, log_redaction.TokenRedactingFilter) for f in logger.filters)

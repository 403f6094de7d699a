"""Fixtures: an app on a real SQLite *file* per test and, when PORTAL_TEST_DATABASE_URL is set,
the same tests again on that PostgreSQL database (every app-level test is parametrised)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask.testing import FlaskCliRunner
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine
from sqlalchemy import text

from portal import background
from portal import clock
from portal import create_app
from portal.config import normalise_database_url
from portal.extensions import db
from tests.mail_server import smtp_server  # noqa: F401

hypothesis_settings.register_profile("dev", max_examples=100, deadline=None)
hypothesis_settings.register_profile("ci", max_examples=300, deadline=None, print_blob=True)
# `make test-fast`: fewer examples, for a quick answer while working.
hypothesis_settings.register_profile("fast", max_examples=20, deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

PG_URL = os.environ.get("PORTAL_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])

#: Cheap argon2 parameters so the suite is quick; production defaults are tested separately.
FAST_ARGON2 = {
    "PORTAL_ARGON2_TIME_COST": 1,
    "PORTAL_ARGON2_MEMORY_COST": 1024,
    "PORTAL_ARGON2_PARALLELISM": 1,
}


def base_settings(database_url: str) -> dict[str, Any]:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "PORTAL_SCHEDULER": False,
        **FAST_ARGON2,
    }


def migrate(database_url: str) -> None:
    """Apply the real migrations (never ``create_all``) to ``database_url``."""
    import flask_migrate

    app = create_app(base_settings(database_url))
    with app.app_context():
        flask_migrate.upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.sqlite"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_migrated() -> str:
    url = normalise_database_url(PG_URL)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    migrate(url)
    return url


def _truncate_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        tables = ", ".join(table.name for table in db.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: a fresh SQLite file, or the truncated PostgreSQL one."""
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "test.sqlite"
        with sqlite3.connect(template) as src, sqlite3.connect(path) as dst:
            src.backup(dst)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_migrated")
    _truncate_postgres(url)
    return url


@pytest.fixture
def settings(request: pytest.FixtureRequest, database_url: str) -> dict[str, Any]:
    """Base test settings, plus any ``@pytest.mark.config(...)`` on the test."""
    values = base_settings(database_url)
    for marker in reversed(list(request.node.iter_markers("config"))):
        values.update(marker.kwargs)
    return values


class FreshContextClient(FlaskClient):
    """Each request runs in its own application context, as on a real server.

    The test itself holds an app context (to use the factories); without this, requests would
    share its ``g`` (Flask-Login caches the user there) and its database session.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        ctx = self.application.app_context()
        ctx.push()
        try:
            return super().open(*args, **kwargs)
        finally:
            ctx.pop()


@pytest.fixture
def app(settings: dict[str, Any]) -> Iterator[Flask]:
    application = create_app(settings)
    application.test_client_class = FreshContextClient
    with application.app_context():
        yield application
        # Work still running after the response (mail sent after a commit) ends first, or
        # its database connection would outlive the engine (a ResourceWarning later on).
        background.shutdown(application)
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture(autouse=True)
def _real_clock_between_tests() -> Iterator[None]:
    clock.reset()
    yield
    clock.reset()


@pytest.fixture(autouse=True)
def _root_logger_put_back() -> Iterator[None]:
    """An app built without TESTING installs the production log handler on the root logger
    (portal.logs); put the root logger back so that no later test writes JSON lines."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)

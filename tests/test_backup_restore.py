"""``portal backup`` and ``portal restore`` on SQLite and PostgreSQL: a populated database is
backed up (0600), restored into a fresh database, and its users log in there."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from portal import create_app
from portal.accounts.models import Profile
from portal.extensions import db
from tests.conftest import FreshContextClient
from tests.conftest import base_settings
from tests.databases import fresh_database
from tests.factories import login
from tests.factories import make_org
from tests.factories import make_user


def portal(cli: FlaskCliRunner, *args: str):  # type: ignore[no-untyped-def]
    return cli.invoke(args=["portal", *args])


@pytest.fixture
def fresh_database_url(app: Flask, tmp_path: Path) -> Iterator[str]:
    with fresh_database(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path) as url:
        yield url


def test_a_backup_restores_into_a_fresh_database_where_its_users_log_in(
    app: Flask, runner: FlaskCliRunner, fresh_database_url: str, tmp_path: Path
) -> None:
    org = make_org("Backed Up Ltd")
    make_user(org, user_id="kept.admin", profile=Profile.ADMINISTRATOR)
    make_user(org, user_id="kept.handler")
    db.session.rollback()
    target = tmp_path / "portal.backup"
    made = portal(runner, "backup", str(target))
    assert made.exit_code == 0, made.output
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    again = portal(runner, "backup", str(target))
    assert again.exit_code != 0
    assert "already exists" in again.output

    other = create_app(base_settings(fresh_database_url))
    other.test_client_class = FreshContextClient
    with other.app_context():
        try:
            cli = other.test_cli_runner()
            restored = portal(cli, "restore", str(target))
            assert restored.exit_code == 0, restored.output
            assert "2 users" in restored.output
            reply = login(other.test_client(), "kept.admin", door="console")
            assert reply.status_code == 302
            assert reply.headers["Location"].startswith("/console")

            refused = portal(cli, "restore", str(target))
            assert refused.exit_code != 0
            assert "not empty" in refused.output
            assert "--force" in refused.output
            forced = portal(cli, "restore", "--force", str(target))
            assert forced.exit_code == 0, forced.output
            assert "2 users" in forced.output
            reply = login(other.test_client(), "kept.handler")
            assert reply.status_code == 302
        finally:
            db.session.remove()
            db.engine.dispose()


def test_restore_refuses_a_file_that_is_not_a_backup(
    app: Flask, fresh_database_url: str, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.backup"
    junk.write_bytes(b"not a backup at all\n" * 10)
    other = create_app(base_settings(fresh_database_url))
    with other.app_context():
        try:
            result = portal(other.test_cli_runner(), "restore", str(junk))
            assert result.exit_code == 1, result.output
            assert "Error:" in result.output
            assert "Traceback" not in result.output
        finally:
            db.session.remove()
            db.engine.dispose()

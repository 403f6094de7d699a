"""``instance/`` is created 0700 and the SQLite database 0600 (issue 10, finding 8): by
create_app, by portal.devsetup (``make run``'s first step) and by the migrations run from the
command line, even under the usual umask 022 that made them world-readable."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import flask_migrate
import pytest

import portal
from portal import create_app
from portal import devsetup
from portal.extensions import db
from tests.live_server import REPO


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("PORTAL_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)


def test_the_default_database_and_its_folder_are_private(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    instance = tmp_path / "instance"
    monkeypatch.setattr(portal, "instance_path", lambda: instance)
    app = create_app({"TESTING": True, "RATELIMIT_ENABLED": False})
    with app.app_context():
        flask_migrate.upgrade()  # the real migrations, as `flask db upgrade` runs them
        db.engine.dispose()
    assert mode(instance) == 0o700
    files = sorted(p.name for p in instance.iterdir())
    assert "portal.sqlite" in files
    for name in files:  # the database and its -wal / -shm files
        assert mode(instance / name) == 0o600, name


def test_a_database_file_named_in_the_url_is_private(tmp_path: Path) -> None:
    path = tmp_path / "named.sqlite"
    app = create_app(
        {
            "TESTING": True,
            "RATELIMIT_ENABLED": False,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}",
        }
    )
    with app.app_context():
        db.session.execute(db.text("CREATE TABLE t (x)"))
        db.session.commit()
        db.engine.dispose()
    assert mode(path) == 0o600


def test_older_readable_ones_are_tightened(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o755)
    (instance / "portal.sqlite").touch(mode=0o644)
    os.chmod(instance / "portal.sqlite", 0o644)
    monkeypatch.setattr(portal, "instance_path", lambda: instance)
    app = create_app({"TESTING": True, "RATELIMIT_ENABLED": False})
    with app.app_context():
        db.engine.dispose()
    assert (mode(instance), mode(instance / "portal.sqlite")) == (0o700, 0o600)


def test_devsetup_makes_a_private_instance_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = tmp_path / "dev" / "instance"
    monkeypatch.setattr(devsetup, "instance_path", lambda: folder)
    assert devsetup.ensure_instance_config() is True
    assert mode(folder) == 0o700
    assert mode(folder / "config.py") == 0o600


@pytest.mark.slow  # the CLI in a subprocess
def test_the_migrations_from_the_command_line_make_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "cli.sqlite"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update({"DATABASE_URL": f"sqlite:///{path}", "PORTAL_ENV": "development"})
    flask = Path(sys.executable).parent / "flask"
    subprocess.run(
        [str(flask), "--app", "app", "db", "upgrade"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert mode(path) == 0o600

"""docs/deploy.md walked with the files it installs, on SQLite and PostgreSQL.

The layout of the docs (/srv/portal with venv/, src/, instance/, backups/) is built in a
temporary folder: venv/ is this test run's virtualenv and src/ this checkout.  The commands are
the docs' own: ``deploy/portal-admin`` (the wrapper, run as the current user), the systemd
units' ``ExecStart`` lines read from deploy/systemd/ with /srv/portal replaced (systemd is not
PID 1 here: the units' commands run with the settings file loaded as systemd would), and
``deploy/portal-backup-nightly``.  What cannot run here (useradd, systemctl, nginx, sudo) is
named in docs/deploy.md.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from flask import Flask

from tests.databases import fresh_database
from tests.live_server import free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
UNITS = REPO / "deploy" / "systemd"
SECRET = "deploy-walk-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
DAY = 86_400


def _exec_start(unit: str, home: Path) -> list[str]:
    """The unit's ExecStart as argv, with /srv/portal moved to ``home``."""
    text = (UNITS / unit).read_text()
    found = re.search(r"^ExecStart=(.+)$", text, re.MULTILINE)
    assert found, f"{unit} has no ExecStart"
    return [arg.replace("/srv/portal", str(home)) for arg in shlex.split(found.group(1))]


def _unit_environment(unit: str) -> dict[str, str]:
    """The unit's own Environment= assignments."""
    env: dict[str, str] = {}
    for line in (UNITS / unit).read_text().splitlines():
        if line.startswith("Environment="):
            for pair in shlex.split(line.removeprefix("Environment=")):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def _write_settings(path: Path, home: Path, database_url: str) -> None:
    """A settings file in the example's format, mode 0640 as the docs say."""
    path.write_text(
        "PORTAL_ENV=production\n"
        f"PORTAL_INSTANCE_PATH={home}/instance\n"
        f"PORTAL_SECRET_KEY={SECRET}\n"
        f"DATABASE_URL={database_url}\n"
        "PORTAL_BASE_URL=https://portal.example.com\n"
        "PORTAL_PROXY_FIX_HOPS=1\n"
        "PORTAL_SCHEDULER=off\n"
        'PORTAL_MAIL_SENDER="Claims Portal <no-reply@portal.example.com>"\n'
        f"PORTAL_MAIL_OUTBOX={home}/instance/outbox\n"
    )
    path.chmod(0o640)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PORTAL_", "FLASK_")) and k not in {"DATABASE_URL", "VIRTUAL_ENV"}
    }
    env.update(extra)
    return env


def _admin(home: Path, settings: Path, *args: str) -> str:
    """``portal-admin ARGS`` as the docs run it (the service user is the current one here)."""
    env = _clean_env(
        PORTAL_HOME=str(home), PORTAL_ENV_FILE=str(settings), PORTAL_USER=_current_user()
    )
    done = subprocess.run(
        [str(REPO / "deploy" / "portal-admin"), *args],
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"portal-admin {args}: {done.stdout}\n{done.stderr}"
    return done.stdout


def _current_user() -> str:
    return subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()


def _as_systemd(settings: Path, argv: list[str], **extra: str) -> list[str]:
    """``argv`` with the settings file exported, as systemd's EnvironmentFile= does."""
    loader = 'set -a; . "$1"; set +a; shift; exec "$@"'
    return ["sh", "-c", loader, "unit", str(settings), *argv]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """/srv/portal of the docs: venv/, src/, instance/ (0700)."""
    root = tmp_path / "srv-portal"
    root.mkdir(mode=0o750)
    (root / "venv").symlink_to(Path(sys.prefix))
    (root / "src").symlink_to(REPO)
    (root / "instance").mkdir(mode=0o700)
    return root


def test_the_documented_commands_install_back_up_restore_and_serve(
    app: Flask, home: Path, tmp_path: Path
) -> None:
    like = app.config["SQLALCHEMY_DATABASE_URI"].replace("+psycopg", "")
    with fresh_database(like, tmp_path) as live, fresh_database(like, tmp_path) as spare:
        settings = tmp_path / "portal.env"
        _write_settings(settings, home, live)

        # 3. Database: migrate, first organisation and Administrator, through the wrapper.
        _admin(home, settings, "db", "upgrade")
        _admin(home, settings, "create-org", "Walk Claims Ltd")
        out = _admin(
            home,
            settings,
            *("create-user", "--org", "Walk Claims Ltd", "--user-id", "walk.admin"),
            *("--profile", "administrator", "--email", "a@walk.example", "--name", "Wal Admin"),
        )
        assert "One-time password" in out
        assert _admin(home, settings, "--version").startswith("Claims Portal Console ")

        # 9. The nightly backup unit: its script, its settings, its retention.
        backups = home / "backups"
        backups.mkdir(mode=0o700)
        old, recent = backups / "portal-20200101-033000.backup", backups / "portal-recent.backup"
        for path, age_days in ((old, 30), (recent, 2)):
            path.write_bytes(b"an earlier backup")
            moment = time.time() - age_days * DAY
            os.utime(path, (moment, moment))
        unit_env = _unit_environment("portal-backup.service")
        assert unit_env["PORTAL_BACKUP_KEEP_DAYS"] == "14"
        unit_env["PORTAL_BACKUP_DIR"] = str(backups)
        done = subprocess.run(
            _as_systemd(settings, _exec_start("portal-backup.service", home)),
            env=_clean_env(PORTAL_HOME=str(home), **unit_env),
            cwd=home,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        made = sorted(p for p in backups.iterdir() if p not in (old, recent))
        assert len(made) == 1, list(backups.iterdir())
        assert stat.S_IMODE(made[0].stat().st_mode) == 0o600
        assert not old.exists(), "a backup older than the retention was kept"
        assert recent.exists(), "a backup within the retention was deleted"

        # 9. Restore into a new, empty database, as the docs' restore procedure does.
        spare_settings = tmp_path / "spare.env"
        _write_settings(spare_settings, home, spare)
        restored = _admin(home, spare_settings, "restore", str(made[0]))
        assert "1 users" in restored
        refused = subprocess.run(
            [str(REPO / "deploy" / "portal-admin"), "restore", str(made[0])],
            env=_clean_env(
                PORTAL_HOME=str(home),
                PORTAL_ENV_FILE=str(spare_settings),
                PORTAL_USER=_current_user(),
            ),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert refused.returncode != 0
        assert "not empty" in refused.stderr

        # 4 and 7. The web unit's command serves the login page and the static files.
        port = free_port()
        log = tmp_path / "web.log"
        argv = _exec_start("portal-web.service", home)
        with log.open("wb") as out_file:
            proc = subprocess.Popen(
                _as_systemd(settings, argv),
                env=_clean_env(PORTAL_BIND=f"127.0.0.1:{port}", PORTAL_WORKERS="1"),
                cwd=home,
                stdout=out_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, log.read_text()
                with contextlib.suppress(requests.RequestException):
                    if requests.get(base + "/console/login", timeout=2).status_code == 200:
                        break
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            assert requests.get(base + "/static/app.css", timeout=10).status_code == 200
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        assert "Traceback" not in log.read_text(), log.read_text()

        # 6. The scheduler unit's command exists and is the scheduler.
        argv = _exec_start("portal-scheduler.service", home)
        done = subprocess.run(
            _as_systemd(settings, [*argv, "--help"]),
            env=_clean_env(),
            cwd=home,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "nightly scheduler" in done.stdout

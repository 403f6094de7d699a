"""The configuration's problems (docs/rules.md §8, issue 11): a production start refuses every
ERROR in one message (the factory, the ``portal`` script, gunicorn), logs each WARNING once, and
``portal check`` shows the effective configuration with no secret in it, then every problem.

No database is opened: the apps get a SQLite file path under ``tmp_path``, and the instance
folder is ``tmp_path`` too, so a developer's ``instance/config.py`` cannot leak in.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask

import portal
from portal import ConfigError
from portal import checks
from portal import create_app
from portal import effective_config
from portal.command import cli
from portal.extensions import db

REPO = Path(__file__).resolve().parents[1]
KEY = "k" * 64
BASE_URL = "https://portal.example.com"
#: A production configuration with no error (and every warning but the filesystem one).
GOOD = {"SECRET_KEY": KEY, "PORTAL_BASE_URL": BASE_URL}
#: Secrets that ``portal check`` must never print.
SECRETS = {
    "PORTAL_SECRET_KEY": "the-secret-key-0123456789-0123456789-abcdef",
    "DATABASE_URL": "postgresql://portal:db-pass-4242@db.internal/portal",
    "PORTAL_RATELIMIT_STORAGE": "redis://:redis-pass-4242@127.0.0.1:6379/0",
    "PORTAL_MAIL_PASSWORD": "smtp-pass-4242",
    "PORTAL_METRICS_TOKEN": "metrics-token-4242",
    "PORTAL_RATELIMIT_STORAGE_OPTIONS": '{"password": "options-pass-4242", "socket_timeout": 2}',
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith("PORTAL_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    instance = tmp_path / "instance"
    monkeypatch.setenv("PORTAL_INSTANCE_PATH", str(instance))
    monkeypatch.setattr(portal, "instance_path", lambda: instance)
    return instance


@pytest.fixture
def build(tmp_path: Path) -> Iterator[Any]:
    """``create_app`` (production unless told) on a throw-away SQLite file plus ``settings``."""
    apps: list[Flask] = []

    def _build(**settings: Any) -> Flask:
        app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.sqlite", **settings})
        apps.append(app)
        return app

    yield _build
    for app in apps:
        with app.app_context():
            db.engine.dispose()


# --- a production start refuses every error, in one message -----------------------------------


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"SECRET_KEY": None}, "ERROR: SECRET_KEY: required"),
        ({"SECRET_KEY": "k" * 31}, "ERROR: SECRET_KEY: too short"),
        ({"PORTAL_BASE_URL": None}, "ERROR: PORTAL_BASE_URL: unset"),
        ({"PORTAL_BASE_URL": ""}, "ERROR: PORTAL_BASE_URL: unset"),
        ({"PORTAL_BASE_URL": "http://portal.example.com"}, "is not an https:// address"),
        ({"PORTAL_BASE_URL": "portal.example.com"}, "is not an https:// address"),
        (
            {"PORTAL_TRUSTED_HOSTS": "other.example.com"},
            "ERROR: PORTAL_TRUSTED_HOSTS: does not include 'portal.example.com'",
        ),
    ],
)
def test_production_refuses_each_error(build: Any, settings: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError) as refused:
        build(**{**GOOD, **settings})
    message = str(refused.value)
    assert named in message
    assert "1 error(s)" in message
    assert "WARNING" not in message  # warnings never refuse


def test_production_names_every_error_in_one_message(build: Any) -> None:
    with pytest.raises(ConfigError) as refused:
        build(SECRET_KEY="short", PORTAL_BASE_URL="http://portal.example.com")
    lines = str(refused.value).splitlines()
    assert lines[0] == "the configuration has 2 error(s), so the portal does not start:"
    assert lines[1].startswith("  ERROR: SECRET_KEY: too short")
    assert lines[2].startswith("  ERROR: PORTAL_BASE_URL: 'http://portal.example.com' is not")
    assert "portal check" in lines[-1]


def test_production_from_the_environment_is_refused_too(
    build: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTAL_SECRET_KEY", KEY)
    monkeypatch.setenv("PORTAL_ENV", "production")
    with pytest.raises(ConfigError, match="PORTAL_BASE_URL: unset"):
        build()
    monkeypatch.setenv("PORTAL_BASE_URL", BASE_URL)
    assert build().config["PORTAL_BASE_URL"] == BASE_URL


def test_the_portal_script_says_the_refusal_without_a_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["create-org", "Refused Ltd"],
        env={"PORTAL_SECRET_KEY": KEY, "DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite"},
    )
    assert result.exit_code != 0
    assert "ERROR: PORTAL_BASE_URL: unset" in result.output
    assert "Traceback" not in result.output


def test_gunicorn_refuses_in_one_message_before_forking(tmp_path: Path) -> None:
    """deploy/gunicorn.conf.py checks in the master: one message, exit 1, no worker started."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.pop("DATABASE_URL", None)
    env.update(
        PORTAL_INSTANCE_PATH=str(tmp_path / "instance"),
        PORTAL_SECRET_KEY="short",
        DATABASE_URL=f"sqlite:///{tmp_path}/x.sqlite",
    )
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            *("-c", str(REPO / "deploy" / "gunicorn.conf.py"), "-b", "127.0.0.1:0", "app:app"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "ERROR: SECRET_KEY: too short" in done.stderr
    assert "ERROR: PORTAL_BASE_URL: unset" in done.stderr
    assert "Traceback" not in done.stderr
    assert "Booting worker" not in done.stderr


# --- development and tests keep working --------------------------------------------------------


@pytest.mark.parametrize("mode", [{"PORTAL_ENV": "development"}, {"TESTING": True}])
def test_development_and_tests_start_without_a_base_url_or_key(
    build: Any, mode: dict[str, Any]
) -> None:
    app = build(**mode)
    assert app.config["PORTAL_BASE_URL"] == "http://127.0.0.1:5000"
    assert app.config["PORTAL_BASE_URL_UNSET"] is True
    assert len(app.config["SECRET_KEY"]) >= 32


def test_development_takes_a_plain_http_base_url(build: Any) -> None:
    app = build(PORTAL_ENV="development", PORTAL_BASE_URL="http://localhost:8080")
    assert app.config["PORTAL_BASE_URL"] == "http://localhost:8080"
    assert app.config["PORTAL_BASE_URL_UNSET"] is False


def test_a_set_base_url_is_kept_as_given(build: Any) -> None:
    app = build(**GOOD)
    assert (app.config["PORTAL_BASE_URL"], app.config["PORTAL_BASE_URL_UNSET"]) == (BASE_URL, False)


# --- warnings: logged once at start ------------------------------------------------------------


def test_each_warning_is_one_json_line_at_start(
    build: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    build(**GOOD)  # production: memory rate limits, no SMTP, no trusted hosts
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    warned = [e["message"] for e in lines if e["level"] == "WARNING" and e["logger"] == "portal"]
    assert len(warned) == 3
    for setting in ("PORTAL_TRUSTED_HOSTS", "PORTAL_RATELIMIT_STORAGE", "PORTAL_MAIL_SERVER"):
        assert sum(f"WARNING: {setting}:" in m for m in warned) == 1, warned


def test_a_clean_production_start_logs_no_warning(
    build: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="portal"):
        build(
            **GOOD,
            PORTAL_TRUSTED_HOSTS="portal.example.com",
            PORTAL_RATELIMIT_STORAGE="redis://127.0.0.1:6379/0",
            PORTAL_MAIL_SERVER="smtp.example.com",
        )
    assert [r.getMessage() for r in caplog.records if r.name == "portal"] == []


def test_sqlite_on_a_network_filesystem_is_logged_at_start(
    build: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(f"/dev/sda1 / ext4 rw 0 0\nfiler:/export {tmp_path} nfs4 rw 0 0\n")
    monkeypatch.setattr(checks, "MOUNTS", mounts)
    with caplog.at_level(logging.WARNING, logger="portal"):
        build(PORTAL_ENV="development", SECRET_KEY=KEY)
    warned = [r.getMessage() for r in caplog.records if r.name == "portal"]
    assert len(warned) == 1
    assert "WARNING: DATABASE_URL:" in warned[0]
    assert "network filesystem (nfs4)" in warned[0]


# --- the SQLite file's filesystem ---------------------------------------------------------------

MOUNTS_TEXT = """\
sysfs /sys sysfs rw,nosuid 0 0
/dev/sda1 / ext4 rw,relatime 0 0
filer:/export /srv/shared nfs4 rw,relatime,vers=4.2 0 0
/dev/sdb1 /srv/shared/local ext4 rw 0 0
//nas/portal /mnt/with\\040space cifs rw 0 0
sshfs#me@host: /home/me/remote fuse.sshfs rw 0 0
"""


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("sqlite:////srv/shared/portal/portal.sqlite", "nfs4"),
        ("sqlite:////srv/shared/portal.sqlite", "nfs4"),
        ("sqlite:////mnt/with space/portal.sqlite", "cifs"),
        ("sqlite:////home/me/remote/p.sqlite", "fuse.sshfs"),
        ("sqlite:////srv/shared/local/portal.sqlite", None),  # the longest mount point wins
        ("sqlite:////srv/sharedness/portal.sqlite", None),  # a prefix of the name is not enough
        ("sqlite:////var/lib/portal/portal.sqlite", None),
        ("sqlite:///:memory:", None),
        ("postgresql+psycopg://u@srv/shared", None),
    ],
)
def test_sqlite_on_a_network_filesystem_from_the_mounts(url: str, kind: str | None) -> None:
    found = checks.run({"SQLALCHEMY_DATABASE_URI": url}, read_mounts=lambda: MOUNTS_TEXT)
    if kind is None:
        assert found == []
    else:
        assert [(p.level, p.setting) for p in found] == [(checks.Level.WARNING, "DATABASE_URL")]
        assert f"network filesystem ({kind})" in found[0].message


def test_no_mounts_to_read_is_no_warning() -> None:
    config = {"SQLALCHEMY_DATABASE_URI": "sqlite:////srv/shared/p.sqlite"}
    assert checks.run(config, read_mounts=lambda: "") == []


# --- portal check ------------------------------------------------------------------------------


def _portal_check(env: dict[str, str]) -> Any:
    return CliRunner().invoke(cli, ["check"], env=env)


def test_check_shows_the_configuration_and_the_refused_errors(tmp_path: Path) -> None:
    """The script's ``check`` answers when the start would be refused: that is when it is
    needed most."""
    result = _portal_check({"DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite"})
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Configuration (production; secrets masked):"
    assert "  PORTAL_BASE_URL = None  (unset)" in lines
    assert "  PORTAL_ENV = 'production'  (default)" in lines
    assert f"  SQLALCHEMY_DATABASE_URI = 'sqlite:///{tmp_path}/x.sqlite'  (environment)" in lines
    problems = lines[lines.index("Problems (5):") + 1 :]
    assert [p.split(":")[0:2] for p in problems] == [
        ["ERROR", " SECRET_KEY"],
        ["ERROR", " PORTAL_BASE_URL"],
        ["WARNING", " PORTAL_TRUSTED_HOSTS"],
        ["WARNING", " PORTAL_MAIL_SERVER"],
        ["WARNING", " PORTAL_RATELIMIT_STORAGE"],
    ]


def test_check_exits_0_with_warnings_only(tmp_path: Path) -> None:
    result = _portal_check(
        {
            "PORTAL_SECRET_KEY": KEY,
            "PORTAL_BASE_URL": BASE_URL,
            "DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite",
        }
    )
    assert result.exit_code == 0, result.output
    assert "WARNING: PORTAL_MAIL_SERVER:" in result.output
    assert "ERROR:" not in result.output


def test_check_never_shows_a_secret(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "config.py").write_text('SECRET_KEY_FALLBACKS = ["old-secret-key-4242"]\n')
    result = _portal_check({**SECRETS, "PORTAL_MAIL_SERVER": "smtp.example.com"})
    assert result.exit_code == 1, result.output  # no base URL
    for name, secret in [*SECRETS.items(), ("fallback", "old-secret-key-4242")]:
        for part in ("4242", secret.removeprefix("postgresql://")):
            assert part not in result.output, name
    lines = result.output.splitlines()
    assert f"  SECRET_KEY = {effective_config.MASK!r}  (environment)" in lines
    assert f"  PORTAL_METRICS_TOKEN = {effective_config.MASK!r}  (environment)" in lines
    assert f"  SECRET_KEY_FALLBACKS = {effective_config.MASK!r}  (instance/config.py)" in lines
    assert (
        "  SQLALCHEMY_DATABASE_URI = 'postgresql+psycopg://portal:********@db.internal/portal'"
        "  (environment)"
    ) in lines
    assert "  RATELIMIT_STORAGE_URI = 'redis://:********@127.0.0.1:6379/0'  (derived)" in lines
    assert "  PORTAL_MAIL_SERVER = 'smtp.example.com'  (environment)" in lines
    assert "  PORTAL_RESET_TOKEN_MINUTES = 60  (default)" in lines  # no secret, not masked


def test_check_in_the_app_group_shows_the_same(build: Any) -> None:
    """``flask --app app portal check`` (an app that started): the same report."""
    app = build(**GOOD, PORTAL_METRICS_TOKEN="metrics-token-4242")
    result = app.test_cli_runner().invoke(args=["portal", "check"])
    assert result.exit_code == 0, result.output
    assert "4242" not in result.output
    assert KEY not in result.output
    assert f"  PORTAL_BASE_URL = {BASE_URL!r}  (the factory's mapping)" in result.output
    assert "WARNING: PORTAL_TRUSTED_HOSTS:" in result.output


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:p@h/d", "postgresql://u:********@h/d"),
        ("redis://:p@h:6379/0", "redis://:********@h:6379/0"),
        ("redis://u@h/0", "redis://u@h/0"),
        ("memory://", "memory://"),
        ("sqlite:////srv/p.sqlite", "sqlite:////srv/p.sqlite"),
    ],
)
def test_the_password_in_a_url_is_masked(url: str, shown: str) -> None:
    assert effective_config.mask_url(url) == shown

"""Settings (docs/rules.md §8, §9; docs/security.md CF-01): the environment mapping, the order in
which settings apply, refusing to start without a SECRET_KEY in production, cookie settings, and the
development instance/config.py.

No database is opened: ``create_app`` only needs a URL, so each app gets a SQLite file path
under ``tmp_path``.  The app's instance folder is pointed at ``tmp_path`` too, so a developer's
real ``instance/config.py`` (which holds a SECRET_KEY) cannot leak into these tests.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

import portal
from portal import ConfigError
from portal import create_app
from portal import devsetup
from portal.config import DEFAULTS
from portal.config import from_environment
from portal.config import normalise_database_url
from portal.extensions import db

KEY = "k" * 64
BASE_URL = "https://portal.example.com"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No PORTAL_* or DATABASE_URL from the caller's shell; an empty instance folder."""
    for name in list(os.environ):
        if name.startswith("PORTAL_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    instance = tmp_path / "instance"
    monkeypatch.setattr(portal, "instance_path", lambda: instance)
    return instance


@pytest.fixture
def made_apps() -> Iterator[list[Flask]]:
    apps: list[Flask] = []
    yield apps
    for app in apps:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def build(tmp_path: Path, made_apps: list[Flask]) -> Any:
    """``create_app`` with a throw-away SQLite URL and the https base URL production needs,
    plus ``settings`` (applied last)."""

    def _build(**settings: Any) -> Flask:
        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.sqlite",
                "PORTAL_BASE_URL": BASE_URL,
                **settings,
            }
        )
        made_apps.append(app)
        return app

    return _build


# --------------------------------------------------------------------------------------------
# from_environment


def test_environment_names_map_to_settings() -> None:
    found = from_environment(
        {
            "PORTAL_TIMEZONE": "America/New_York",
            "PORTAL_SECRET_KEY": KEY,
            "PORTAL_RATELIMIT_ENABLED": "false",
            "PORTAL_SESSION_IDLE_MINUTES": "15",
            "PORTAL_FOO": "ignored",
            "FOO": "ignored",
            "HOME": "/root",
        },
        DEFAULTS,
    )
    assert found == {
        "PORTAL_TIMEZONE": "America/New_York",  # a known PORTAL_ name keeps its prefix
        "SECRET_KEY": KEY,  # otherwise the prefix is dropped
        "RATELIMIT_ENABLED": False,
        "PORTAL_SESSION_IDLE_MINUTES": 15,
    }
    assert type(found["PORTAL_SESSION_IDLE_MINUTES"]) is int


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("on", True),
        ("On", True),
        ("yes", True),
        ("1", True),
        ("false", False),
        ("off", False),
        ("OFF", False),
        ("no", False),
        ("0", False),
        (" on ", True),
    ],
)
def test_boolean_values(raw: str, expected: bool) -> None:
    found = from_environment({"PORTAL_RATELIMIT_ENABLED": raw}, DEFAULTS)
    assert found["RATELIMIT_ENABLED"] is expected


@pytest.mark.parametrize("raw", ["maybe", "enabled", "2", "tru"])
def test_a_bad_boolean_names_the_variable(raw: str) -> None:
    with pytest.raises(ValueError, match="PORTAL_RATELIMIT_ENABLED"):
        from_environment({"PORTAL_RATELIMIT_ENABLED": raw}, DEFAULTS)


def test_a_bad_number_names_the_variable() -> None:
    with pytest.raises(ValueError, match="PORTAL_SESSION_IDLE_MINUTES"):
        from_environment({"PORTAL_SESSION_IDLE_MINUTES": "fifteen"}, DEFAULTS)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgres://u:p@db.example:5432/portal",
            "postgresql+psycopg://u:p@db.example:5432/portal",
        ),
        ("postgresql://u@db/portal", "postgresql+psycopg://u@db/portal"),
        ("postgresql+psycopg://u@db/portal", "postgresql+psycopg://u@db/portal"),
        ("sqlite:////srv/portal.sqlite", "sqlite:////srv/portal.sqlite"),
    ],
)
def test_database_url(url: str, expected: str) -> None:
    found = from_environment({"DATABASE_URL": url}, DEFAULTS)
    assert found == {"SQLALCHEMY_DATABASE_URI": expected}
    assert normalise_database_url(url) == expected


def test_an_empty_database_url_is_ignored() -> None:
    assert from_environment({"DATABASE_URL": ""}, DEFAULTS) == {}


# --------------------------------------------------------------------------------------------
# order: defaults < instance/config.py < environment < the mapping


def test_the_mapping_overrides_the_environment(monkeypatch: pytest.MonkeyPatch, build: Any) -> None:
    monkeypatch.setenv("PORTAL_TIMEZONE", "Europe/Paris")
    monkeypatch.setenv("PORTAL_SESSION_IDLE_MINUTES", "15")
    app = build(TESTING=True, PORTAL_TIMEZONE="America/New_York")
    assert app.config["PORTAL_TIMEZONE"] == "America/New_York"
    assert app.config["PORTAL_SESSION_IDLE_MINUTES"] == 15


def test_the_environment_overrides_the_defaults(
    monkeypatch: pytest.MonkeyPatch, build: Any
) -> None:
    assert DEFAULTS["PORTAL_SESSION_IDLE_MINUTES"] != 15
    assert DEFAULTS["RATELIMIT_ENABLED"] is True
    monkeypatch.setenv("PORTAL_SESSION_IDLE_MINUTES", "15")
    monkeypatch.setenv("PORTAL_RATELIMIT_ENABLED", "off")
    app = build(TESTING=True)
    assert app.config["PORTAL_SESSION_IDLE_MINUTES"] == 15
    assert app.config["RATELIMIT_ENABLED"] is False
    assert app.config["PORTAL_TIMEZONE"] == DEFAULTS["PORTAL_TIMEZONE"]


def test_database_url_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, made_apps: list[Flask]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/from-env.sqlite")
    app = create_app({"TESTING": True})
    made_apps.append(app)
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/from-env.sqlite"


def test_instance_config_sits_between_defaults_and_environment(
    monkeypatch: pytest.MonkeyPatch, clean_environment: Path, build: Any
) -> None:
    clean_environment.mkdir()
    (clean_environment / "config.py").write_text(
        "PORTAL_SESSION_IDLE_MINUTES = 20\nPORTAL_TIMEZONE = 'Europe/Paris'\n"
        f"SECRET_KEY = {KEY!r}\n"
    )
    monkeypatch.setenv("PORTAL_TIMEZONE", "America/New_York")
    app = build()  # production: the key comes from instance/config.py
    assert app.config["PORTAL_SESSION_IDLE_MINUTES"] == 20  # instance over defaults
    assert app.config["PORTAL_TIMEZONE"] == "America/New_York"  # environment over instance
    assert app.config["SECRET_KEY"] == KEY


# --------------------------------------------------------------------------------------------
# CF-01: SECRET_KEY, PORTAL_ENV, PORTAL_TIMEZONE


def test_production_without_a_secret_key_refuses_to_start(build: Any) -> None:
    assert DEFAULTS["PORTAL_ENV"] == "production"
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        build(SECRET_KEY=None)


def test_explicit_production_without_a_secret_key_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch, build: Any
) -> None:
    monkeypatch.setenv("PORTAL_ENV", "production")
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        build(SECRET_KEY=None)


def test_an_empty_secret_key_is_no_key(monkeypatch: pytest.MonkeyPatch, build: Any) -> None:
    monkeypatch.setenv("PORTAL_SECRET_KEY", "")
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        build()


def test_production_takes_the_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, build: Any
) -> None:
    monkeypatch.setenv("PORTAL_SECRET_KEY", KEY)
    app = build()
    assert app.config["SECRET_KEY"] == KEY
    assert app.config["PORTAL_ENV"] == "production"


def test_development_starts_with_a_random_key(monkeypatch: pytest.MonkeyPatch, build: Any) -> None:
    monkeypatch.setenv("PORTAL_ENV", "development")
    first = build(SECRET_KEY=None)
    second = build(SECRET_KEY=None)
    keys = [first.config["SECRET_KEY"], second.config["SECRET_KEY"]]
    for key in keys:
        assert re.fullmatch(r"[0-9a-f]{64}", key)  # 32 random bytes
    assert keys[0] != keys[1]


def test_testing_starts_with_a_random_key(build: Any) -> None:
    app = build(TESTING=True, SECRET_KEY=None)
    assert len(app.config["SECRET_KEY"]) >= 64


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "Europe/Londres", "../../etc/passwd"])
def test_an_unknown_time_zone_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch, build: Any, zone: str
) -> None:
    monkeypatch.setenv("PORTAL_TIMEZONE", zone)
    with pytest.raises(ConfigError, match="PORTAL_TIMEZONE"):
        build(TESTING=True)


def test_an_unknown_time_zone_in_the_mapping_refuses_to_start(build: Any) -> None:
    with pytest.raises(ConfigError, match="PORTAL_TIMEZONE"):
        build(TESTING=True, PORTAL_TIMEZONE="Nowhere/Special")


def test_an_unknown_environment_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch, build: Any
) -> None:
    monkeypatch.setenv("PORTAL_ENV", "staging")
    with pytest.raises(ConfigError, match="PORTAL_ENV"):
        build(SECRET_KEY=KEY)


# --------------------------------------------------------------------------------------------
# cookies


def test_production_cookie_settings(monkeypatch: pytest.MonkeyPatch, build: Any) -> None:
    monkeypatch.setenv("PORTAL_ENV", "production")
    app = build(SECRET_KEY=KEY)
    c = app.config
    assert c["SESSION_COOKIE_SECURE"] is True
    assert c["SESSION_COOKIE_NAME"] == "__Host-portal-session"
    assert c["SESSION_COOKIE_HTTPONLY"] is True
    assert c["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert c.get("SESSION_COOKIE_DOMAIN") in (None, False)  # a __Host- cookie has no Domain


def test_production_session_cookie_on_the_wire(monkeypatch: pytest.MonkeyPatch, build: Any) -> None:
    """The login form puts its CSRF token in the session, so the cookie is sent."""
    monkeypatch.setenv("PORTAL_ENV", "production")
    app = build(SECRET_KEY=KEY, RATELIMIT_ENABLED=False)
    response = app.test_client().get("/portal/login", base_url="https://portal.example")
    assert response.status_code == 200
    cookies = [v for k, v in response.headers.items() if k.lower() == "set-cookie"]
    session_cookies = [v for v in cookies if v.startswith("__Host-portal-session=")]
    assert len(session_cookies) == 1, cookies
    attrs = {part.strip().split("=")[0].lower() for part in session_cookies[0].split(";")[1:]}
    assert {"secure", "httponly", "path", "samesite"} <= attrs
    assert "domain" not in attrs
    assert "SameSite=Lax" in session_cookies[0]
    assert "Path=/" in session_cookies[0]


def test_development_cookie_settings(monkeypatch: pytest.MonkeyPatch, build: Any) -> None:
    monkeypatch.setenv("PORTAL_ENV", "development")
    app = build(SECRET_KEY=None)
    c = app.config
    assert c["SESSION_COOKIE_SECURE"] is False
    assert c["SESSION_COOKIE_NAME"] == "portal-session"
    assert c["SESSION_COOKIE_HTTPONLY"] is True
    assert c["SESSION_COOKIE_SAMESITE"] == "Lax"


@pytest.mark.parametrize(("raw", "secure"), [("off", False), ("false", False), ("0", False)])
def test_cookie_secure_from_the_environment_is_a_boolean(
    monkeypatch: pytest.MonkeyPatch, build: Any, raw: str, secure: bool
) -> None:
    """config.py: "Values are converted to the type of the default (on/off, true/false, 1/0
    for booleans)".  SESSION_COOKIE_SECURE is a boolean setting whose default is None (meaning
    "decide from PORTAL_ENV"), so an operator behind plain HTTP who sets it off must get False,
    not the truthy string "off"."""
    monkeypatch.setenv("PORTAL_SESSION_COOKIE_SECURE", raw)
    app = build(SECRET_KEY=KEY)
    assert app.config["SESSION_COOKIE_SECURE"] is secure
    expected_name = "__Host-portal-session" if secure else "portal-session"
    assert app.config["SESSION_COOKIE_NAME"] == expected_name


# --------------------------------------------------------------------------------------------
# portal.devsetup: instance/config.py with a SECRET_KEY, written once


def test_ensure_instance_config_writes_a_private_key_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = tmp_path / "dev-instance"
    monkeypatch.setattr(devsetup, "instance_path", lambda: folder)
    path = folder / "config.py"

    assert devsetup.ensure_instance_config() is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = path.read_text()
    settings: dict[str, Any] = {}
    exec(compile(first, str(path), "exec"), settings)  # noqa: S102 (our own generated file)
    assert re.fullmatch(r"[0-9a-f]{64}", settings["SECRET_KEY"])

    assert devsetup.ensure_instance_config() is False
    assert path.read_text() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_generated_key_is_used_across_restarts(
    monkeypatch: pytest.MonkeyPatch, clean_environment: Path, build: Any
) -> None:
    """CF-01: the same key in every process and after a restart (here: two apps)."""
    monkeypatch.setattr(devsetup, "instance_path", lambda: clean_environment)
    devsetup.ensure_instance_config()
    first, second = build(), build()  # production, no key in the environment or mapping
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"]
    assert re.fullmatch(r"[0-9a-f]{64}", first.config["SECRET_KEY"])

"""Every Flask-Limiter setting works from the environment (README: ``PORTAL_<NAME>`` sets
``<NAME>``), reaches the limiter of the app it was given to (not only the first app of the
process), and the per-deployment key prefix separates deployments sharing one Redis."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask_limiter.constants import ConfigVars

import portal
from portal import create_app
from portal.config import CALLABLE_SETTINGS
from portal.config import DEFAULTS
from portal.config import from_environment
from portal.extensions import db
from portal.extensions import limiter
from tests.accounts.test_rate_limit_storage import REDIS_URL
from tests.accounts.test_rate_limit_storage import _redis_reachable
from tests.factories import login

KEY = "k" * 64

#: For each setting: a value as the environment gives it, the setting it becomes, and (where
#: the limiter keeps it) the limiter attribute that must hold it.
ENVIRONMENT: dict[str, tuple[str, Any, str | None]] = {
    "RATELIMIT_ENABLED": ("off", False, "enabled"),
    "RATELIMIT_STORAGE_URI": ("memory://?x=1", "memory://?x=1", None),
    "RATELIMIT_STORAGE_OPTIONS": ('{"socket_timeout": 3}', {"socket_timeout": 3}, None),
    "RATELIMIT_KEY_PREFIX": ("deployment-b", "deployment-b", "_key_prefix"),
    "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": ("off", False, "_in_memory_fallback_enabled"),
    "RATELIMIT_IN_MEMORY_FALLBACK": ("7 per minute", "7 per minute", None),
    "RATELIMIT_SWALLOW_ERRORS": ("off", False, "_swallow_errors"),
    "RATELIMIT_STRATEGY": ("moving-window", "moving-window", "_strategy"),
    "RATELIMIT_FAIL_ON_FIRST_BREACH": ("off", False, "_fail_on_first_breach"),
    "RATELIMIT_DEFAULT": ("1000 per hour", "1000 per hour", None),
    "RATELIMIT_DEFAULTS_PER_METHOD": ("on", True, "_default_limits_per_method"),
    "RATELIMIT_DEFAULTS_COST": ("2", 2, "_default_limits_cost"),
    "RATELIMIT_APPLICATION": ("5000 per hour", "5000 per hour", None),
    "RATELIMIT_APPLICATION_PER_METHOD": ("on", True, "_application_limits_per_method"),
    "RATELIMIT_APPLICATION_COST": ("3", 3, "_application_limits_cost"),
    "RATELIMIT_META": ("10 per day", "10 per day", None),
    "RATELIMIT_HEADERS_ENABLED": ("on", True, "_headers_enabled"),
    "RATELIMIT_HEADER_LIMIT": ("X-Limit", "X-Limit", None),
    "RATELIMIT_HEADER_REMAINING": ("X-Left", "X-Left", None),
    "RATELIMIT_HEADER_RESET": ("X-Reset", "X-Reset", None),
    "RATELIMIT_HEADER_RETRY_AFTER": ("X-Retry", "X-Retry", None),
    "RATELIMIT_HEADER_RETRY_AFTER_VALUE": ("http-date", "http-date", "_retry_after"),
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("PORTAL_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.setattr(portal, "instance_path", lambda: tmp_path / "instance")


@pytest.fixture
def made_apps() -> Iterator[list[Flask]]:
    apps: list[Flask] = []
    yield apps
    for app in apps:
        with app.app_context():
            db.engine.dispose()


def _build(tmp_path: Path, made_apps: list[Flask], **settings: Any) -> Flask:
    app = create_app(
        {"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.sqlite", **settings}
    )
    made_apps.append(app)
    return app


def test_every_flask_limiter_setting_is_known() -> None:
    """A setting Flask-Limiter reads is either a known setting (so settable from the
    environment) or one that takes a Python callable (instance/config.py only)."""
    names = {v for k, v in vars(ConfigVars).items() if k.isupper() and isinstance(v, str)}
    assert names - CALLABLE_SETTINGS == {n for n in DEFAULTS if n.startswith("RATELIMIT_")}
    assert set(ENVIRONMENT) == names - CALLABLE_SETTINGS


@pytest.mark.parametrize("name", sorted(ENVIRONMENT))
def test_each_setting_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, made_apps: list[Flask], name: str
) -> None:
    raw, expected, attribute = ENVIRONMENT[name]
    assert from_environment({f"PORTAL_{name}": raw}, DEFAULTS) == {name: expected}
    monkeypatch.setenv(f"PORTAL_{name}", raw)
    app = _build(tmp_path, made_apps)
    assert app.config[name] == expected
    if attribute is not None:
        assert getattr(limiter, attribute) == expected


def test_a_bad_json_object_names_the_variable() -> None:
    for raw in ("socket_timeout=3", "[1, 2]", "{"):
        with pytest.raises(ValueError, match="PORTAL_RATELIMIT_STORAGE_OPTIONS"):
            from_environment({"PORTAL_RATELIMIT_STORAGE_OPTIONS": raw}, DEFAULTS)


def test_each_app_gets_its_own_limiter_settings(tmp_path: Path, made_apps: list[Flask]) -> None:
    """Flask-Limiter keeps the first app's values; the portal's limiter takes each app's."""
    _build(tmp_path, made_apps, RATELIMIT_KEY_PREFIX="first", RATELIMIT_SWALLOW_ERRORS=False)
    assert (limiter._key_prefix, limiter._swallow_errors) == ("first", False)
    _build(tmp_path, made_apps, RATELIMIT_KEY_PREFIX="second", RATELIMIT_SWALLOW_ERRORS=True)
    assert (limiter._key_prefix, limiter._swallow_errors) == ("second", True)


def test_default_and_application_limits_are_each_apps_own(
    tmp_path: Path, made_apps: list[Flask]
) -> None:
    _build(tmp_path, made_apps, RATELIMIT_DEFAULT="1 per day", RATELIMIT_APPLICATION="2 per day")
    assert limiter.limit_manager._default_limits
    assert limiter.limit_manager._application_limits
    _build(tmp_path, made_apps)
    assert not limiter.limit_manager._default_limits
    assert not limiter.limit_manager._application_limits


def test_the_defaults_fail_open(tmp_path: Path, made_apps: list[Flask]) -> None:
    app = _build(tmp_path, made_apps)
    assert app.config["RATELIMIT_IN_MEMORY_FALLBACK_ENABLED"] is True
    assert app.config["RATELIMIT_SWALLOW_ERRORS"] is True
    assert app.config["RATELIMIT_KEY_PREFIX"] == "portal-live"
    assert _build(tmp_path, made_apps, PORTAL_ENVIRONMENT="training").config[
        "RATELIMIT_KEY_PREFIX"
    ] == ("portal-training")


def test_redis_gets_short_timeouts_unless_told_otherwise(
    tmp_path: Path, made_apps: list[Flask]
) -> None:
    app = _build(tmp_path, made_apps, RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0")
    assert app.config["RATELIMIT_STORAGE_OPTIONS"] == {
        "socket_connect_timeout": 1,
        "socket_timeout": 1,
    }
    app = _build(
        tmp_path,
        made_apps,
        RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0",
        RATELIMIT_STORAGE_OPTIONS={"socket_timeout": 5},
    )
    assert app.config["RATELIMIT_STORAGE_OPTIONS"]["socket_timeout"] == 5


def test_the_key_prefix_separates_deployments_in_redis(
    database_url: str, monkeypatch: pytest.MonkeyPatch, made_apps: list[Flask]
) -> None:
    """Two deployments on one Redis, each with its own prefix (from the environment): the
    keys carry the prefix, and one deployment's attempts do not count against the other."""
    if not _redis_reachable():
        pytest.skip(f"no Redis at {REDIS_URL} (CI has one)")
    redis.Redis.from_url(REDIS_URL).flushdb()
    settings = {
        "TESTING": True,
        "SECRET_KEY": KEY,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "WTF_CSRF_ENABLED": False,
        "PORTAL_SCHEDULER": False,
        "PORTAL_ARGON2_TIME_COST": 1,
        "PORTAL_ARGON2_MEMORY_COST": 1024,
        "PORTAL_ARGON2_PARALLELISM": 1,
    }
    monkeypatch.setenv("PORTAL_RATELIMIT_ENABLED", "on")
    monkeypatch.setenv("PORTAL_RATELIMIT_STORAGE", REDIS_URL)
    monkeypatch.setenv("PORTAL_LOGIN_RATE_LIMIT", "2 per minute")
    statuses: dict[str, list[int]] = {}
    for prefix in ("deployment-a", "deployment-b"):
        monkeypatch.setenv("PORTAL_RATELIMIT_KEY_PREFIX", prefix)
        app = create_app(settings)
        made_apps.append(app)
        with app.app_context():
            client = app.test_client()
            statuses[prefix] = [
                login(client, "someone", "wrong password").status_code for _ in range(3)
            ]
            db.session.remove()
    assert statuses == {"deployment-a": [200, 200, 429], "deployment-b": [200, 200, 429]}
    keys = [k.decode() for k in redis.Redis.from_url(REDIS_URL).keys("*")]
    assert keys
    assert all("/deployment-a/" in k or "/deployment-b/" in k for k in keys), keys
    assert any("/deployment-a/" in k for k in keys)
    assert any("/deployment-b/" in k for k in keys)

"""PORTAL_TRUSTED_HOSTS (issue 10, finding 8): a request for another Host gets a 400 and never
a redirect that reflects it; IP literals (health probes), localhost and the test client pass;
unset, nothing is checked.  And ``portal check`` warns without the setting in production."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

import portal
from portal import checks
from portal import create_app
from portal import hosts
from portal.extensions import db

KEY = "k" * 64


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("PORTAL_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.setattr(portal, "instance_path", lambda: tmp_path / "instance")


@pytest.fixture
def build(tmp_path: Path) -> Iterator[Any]:
    apps: list[Flask] = []

    def _build(**settings: Any) -> Flask:
        app = create_app(
            {
                "TESTING": True,
                "SECRET_KEY": KEY,
                "RATELIMIT_ENABLED": False,
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.sqlite",
                **settings,
            }
        )
        apps.append(app)
        return app

    yield _build
    for app in apps:
        with app.app_context():
            db.engine.dispose()


# --- the check on requests ---------------------------------------------------------------------


def test_another_host_gets_a_400_not_a_redirect_reflecting_it(build: Any) -> None:
    client = build(PORTAL_TRUSTED_HOSTS="portal.example.com").test_client()
    for path in ("/portal", "/console", "/", "/portal/login"):  # /portal redirects to /portal/
        response = client.get(path, base_url="http://evil.example")
        assert response.status_code == 400, path
        assert "Location" not in response.headers
        assert "evil.example" not in response.get_data(as_text=True)
    assert client.post("/portal/login", base_url="http://evil.example").status_code == 400


def test_without_the_setting_nothing_is_checked(build: Any) -> None:
    client = build().test_client()
    assert client.get("/portal/login", base_url="http://evil.example").status_code == 200


@pytest.mark.parametrize(
    "base_url",
    [
        "https://portal.example.com",
        "https://PORTAL.example.com:8443",
        "https://a.claims.example",  # ".claims.example": every subdomain
        "https://claims.example",
        "http://127.0.0.1:8000",  # probes addressed by IP
        "http://10.20.30.40",
        "http://[::1]:8000",
        "http://[fd00::5]",
        "http://localhost",  # the test client's own default
    ],
)
def test_trusted_names_and_ip_literals_pass(build: Any, base_url: str) -> None:
    client = build(PORTAL_TRUSTED_HOSTS="portal.example.com, .claims.example").test_client()
    assert client.get("/portal/login", base_url=base_url).status_code == 200


def test_the_test_client_passes_by_default(build: Any) -> None:
    client = build(PORTAL_TRUSTED_HOSTS="portal.example.com").test_client()
    assert client.get("/portal/login").status_code == 200


@pytest.mark.parametrize(
    "host", ["portal.example.com.evil.example", "evilportal.example.com", "127.0.0.1.evil.example"]
)
def test_look_alikes_are_refused(build: Any, host: str) -> None:
    client = build(PORTAL_TRUSTED_HOSTS="portal.example.com").test_client()
    assert client.get("/portal/login", base_url=f"http://{host}").status_code == 400


def test_the_host_behind_a_proxy_is_the_forwarded_one(build: Any) -> None:
    client = build(PORTAL_TRUSTED_HOSTS="portal.example.com", PORTAL_PROXY_FIX_HOPS=1).test_client()
    ok = client.get("/portal/login", headers={"X-Forwarded-Host": "portal.example.com"})
    assert ok.status_code == 200
    refused = client.get("/portal/login", headers={"X-Forwarded-Host": "evil.example"})
    assert refused.status_code == 400


def test_the_setting_from_the_environment(monkeypatch: pytest.MonkeyPatch, build: Any) -> None:
    monkeypatch.setenv("PORTAL_TRUSTED_HOSTS", " portal.example.com , .Claims.example ,")
    app = build()
    assert app.config["PORTAL_TRUSTED_HOSTS"] == ("portal.example.com", ".claims.example")
    client = app.test_client()
    assert client.get("/portal/login", base_url="http://evil.example").status_code == 400


@pytest.mark.parametrize(
    ("host", "name", "ip"),
    [
        ("example.com", "example.com", False),
        ("example.com:80", "example.com", False),
        ("127.0.0.1:8000", "127.0.0.1", True),
        ("[::1]:8000", "::1", True),
        ("[::1]", "::1", True),
        ("::1", "::1", True),
        ("", "", False),
    ],
)
def test_hostname_and_ip_literals(host: str, name: str, ip: bool) -> None:
    assert hosts.hostname(host) == name
    assert hosts.is_ip_literal(host) is ip


# --- portal check -----------------------------------------------------------------------------


def _check(app: Flask) -> Any:
    return app.test_cli_runner().invoke(args=["portal", "check"])


def _problems(output: str) -> list[str]:
    """The problem lines of ``portal check`` (after the configuration it prints first)."""
    return [line for line in output.splitlines() if line.startswith(("ERROR: ", "WARNING: "))]


def test_check_recommends_trusted_hosts_in_production(build: Any) -> None:
    app = build(TESTING=False, PORTAL_ENV="production", PORTAL_BASE_URL="https://x.example")
    result = _check(app)
    assert result.exit_code == 0, result.output
    assert "WARNING: PORTAL_TRUSTED_HOSTS" in result.output


def test_check_is_quiet_in_development(build: Any) -> None:
    result = _check(build(PORTAL_ENV="development"))
    assert result.exit_code == 0
    assert result.output.strip().splitlines()[-1] == "No problems found."
    assert _problems(result.output) == []


def test_check_fails_when_the_base_url_would_be_refused(build: Any) -> None:
    app = build(
        PORTAL_ENV="production",
        PORTAL_TRUSTED_HOSTS="portal.example.com",
        PORTAL_BASE_URL="https://claims.example.org",
        PORTAL_RATELIMIT_STORAGE="redis://127.0.0.1:6379/0",
        PORTAL_MAIL_SERVER="smtp.example.com",
    )
    result = _check(app)
    assert result.exit_code == 1
    assert _problems(result.output) == [
        "ERROR: PORTAL_TRUSTED_HOSTS: does not include 'claims.example.org', the host of "
        "PORTAL_BASE_URL: the links in emails would get a 400"
    ]


def test_check_passes_a_good_production_configuration(build: Any) -> None:
    app = build(
        PORTAL_ENV="production",
        PORTAL_TRUSTED_HOSTS="portal.example.com",
        PORTAL_BASE_URL="https://portal.example.com",
        PORTAL_RATELIMIT_STORAGE="redis://127.0.0.1:6379/0",
        PORTAL_MAIL_SERVER="smtp.example.com",
    )
    result = _check(app)
    assert (result.exit_code, result.output.strip().splitlines()[-1]) == (0, "No problems found.")


def test_the_checks_are_a_list_to_extend() -> None:
    """A new check is one function in checks.CHECKS; errors come first."""

    def always(config: Any) -> Any:
        yield checks.Problem(checks.Level.ERROR, "X", "broken")

    config = {
        "PORTAL_ENV": "production",
        "SECRET_KEY": KEY,
        "PORTAL_BASE_URL": "https://portal.example.com",
        "PORTAL_MAIL_SERVER": "smtp.example.com",
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_STORAGE_URI": "memory://",
    }
    found = checks.run(config, [*checks.CHECKS, always])
    assert [f.level for f in found] == [
        checks.Level.ERROR,
        checks.Level.WARNING,
        checks.Level.WARNING,
    ]

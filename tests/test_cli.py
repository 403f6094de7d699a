"""``flask --app app portal …`` (docs/rules.md §8, §9): create-org, create-user, demo-data.

Runs on SQLite and, when PORTAL_TEST_DATABASE_URL is set, PostgreSQL.  demo-data writes
``demo-passwords.txt`` into the app's instance folder, so those tests point ``app.instance_path``
at ``tmp_path`` and the developer's real instance folder is never touched.
"""

from __future__ import annotations

import re
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func
from sqlalchemy import select

from portal import clock
from portal.accounts import passwords
from portal.accounts import service
from portal.accounts.models import Organisation
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.audit.models import AuditEvent
from portal.cli import DEMO_ORG
from portal.extensions import db

OTP_LINE = re.compile(r"One-time password[^:]*: (\S+)\s*$", re.MULTILINE)


def portal(runner: FlaskCliRunner, *args: str) -> Result:
    return runner.invoke(args=["portal", *args])


def count(model: type) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model)) or 0


def create_user(
    runner: FlaskCliRunner,
    *,
    user_id: str = "alice.admin",
    profile: str = "administrator",
    org: str | None = "Acme Claims",
    extra: tuple[str, ...] = (),
) -> Result:
    args = [
        "create-user",
        "--user-id",
        user_id,
        "--profile",
        profile,
        "--email",
        f"{user_id}@example.com",
        "--name",
        "Alice Example",
        *extra,
    ]
    if org is not None:
        args += ["--org", org]
    return portal(runner, *args)


def assert_failed(result: Result, *fragments: str) -> None:
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


# --------------------------------------------------------------------------------------------
# create-org


def test_create_org(runner: FlaskCliRunner, app: Flask) -> None:
    result = portal(runner, "create-org", "Acme Claims")
    assert result.exit_code == 0, result.output
    assert "Acme Claims" in result.output
    org = service.find_organisation("acme claims")
    assert org is not None
    assert org.name == "Acme Claims"
    kinds = list(db.session.scalars(select(AuditEvent.kind)))
    assert kinds == ["organisation_created"]


@pytest.mark.parametrize("duplicate", ["Acme Claims", "ACME CLAIMS", "  acme claims  "])
def test_create_org_refuses_a_duplicate_ignoring_case(
    runner: FlaskCliRunner, app: Flask, duplicate: str
) -> None:
    assert portal(runner, "create-org", "Acme Claims").exit_code == 0
    result = portal(runner, "create-org", duplicate)
    assert_failed(result, "already exists")
    assert count(Organisation) == 1


def test_create_org_refuses_an_empty_name(runner: FlaskCliRunner, app: Flask) -> None:
    assert_failed(portal(runner, "create-org", "   "), "name")
    assert count(Organisation) == 0


# --------------------------------------------------------------------------------------------
# create-user


def test_create_administrator_prints_a_working_one_time_password(
    runner: FlaskCliRunner, app: Flask
) -> None:
    portal(runner, "create-org", "Acme Claims")
    result = create_user(runner, user_id="Alice.Admin")
    assert result.exit_code == 0, result.output
    assert "Administrator" in result.output
    match = OTP_LINE.search(result.output)
    assert match, result.output
    one_time = match.group(1)

    user = service.find_user("alice.admin")
    assert user is not None
    assert user.user_id == "Alice.Admin"
    assert user.profile == Profile.ADMINISTRATOR
    assert user.organisation_id == service.find_organisation("Acme Claims").id
    assert passwords.verify_password(user.password_hash, one_time)
    assert not passwords.verify_password(user.password_hash, one_time.lower())
    assert user.must_change_password is True
    assert (user.enabled, user.active, user.disabled_reason, user.failed_attempts) == (
        True,
        True,
        None,
        0,
    )
    default_days = app.config["PORTAL_DEFAULT_EXPIRY_DAYS"]
    assert user.expires_on == clock.today() + timedelta(days=default_days)
    assert one_time not in {e.details for e in db.session.scalars(select(AuditEvent))}


def test_each_one_time_password_is_different(runner: FlaskCliRunner, app: Flask) -> None:
    portal(runner, "create-org", "Acme Claims")
    first = OTP_LINE.search(create_user(runner, user_id="first.admin").output)
    second = OTP_LINE.search(create_user(runner, user_id="second.admin").output)
    assert first
    assert second
    assert first.group(1) != second.group(1)


def test_create_user_refuses_an_unknown_org(runner: FlaskCliRunner, app: Flask) -> None:
    result = create_user(runner, org="No Such Firm")
    assert_failed(result, "No organisation called", "No Such Firm")
    assert count(User) == 0


def test_create_user_refuses_an_invalid_profile(runner: FlaskCliRunner, app: Flask) -> None:
    portal(runner, "create-org", "Acme Claims")
    result = create_user(runner, profile="superuser")
    assert_failed(result, "--profile")
    assert "superuser" in result.output
    assert count(User) == 0


def test_claims_handler_needs_an_org(runner: FlaskCliRunner, app: Flask) -> None:
    result = create_user(runner, user_id="chris.handler", profile="claims_handler", org=None)
    assert_failed(result, "belong to an organisation")
    assert count(User) == 0


def test_administrator_needs_an_org(runner: FlaskCliRunner, app: Flask) -> None:
    result = create_user(runner, profile="administrator", org=None)
    assert_failed(result, "belong to an organisation")
    assert count(User) == 0


@pytest.mark.parametrize("days", [-365, -1, 0])
def test_create_user_refuses_an_expiry_date_not_after_today(
    runner: FlaskCliRunner, app: Flask, days: int
) -> None:
    portal(runner, "create-org", "Acme Claims")
    when = (clock.today() + timedelta(days=days)).isoformat()
    result = create_user(runner, extra=("--expires-on", when))
    assert_failed(result, "--expires-on")
    assert count(User) == 0


def test_create_user_takes_a_future_expiry_date(runner: FlaskCliRunner, app: Flask) -> None:
    portal(runner, "create-org", "Acme Claims")
    when = clock.today() + timedelta(days=30)
    result = create_user(runner, extra=("--expires-on", when.isoformat()))
    assert result.exit_code == 0, result.output
    user = service.find_user("alice.admin")
    assert user is not None
    assert user.expires_on == when


def test_helpdesk_user_without_org(runner: FlaskCliRunner, app: Flask) -> None:
    result = create_user(runner, user_id="fran.helpdesk", profile="helpdesk", org=None)
    assert result.exit_code == 0, result.output
    user = service.find_user("fran.helpdesk")
    assert user is not None
    assert user.profile == Profile.HELPDESK
    assert user.organisation_id is None
    assert user.expires_on is None
    match = OTP_LINE.search(result.output)
    assert match
    assert passwords.verify_password(user.password_hash, match.group(1))


def test_helpdesk_user_with_an_org_is_refused(runner: FlaskCliRunner, app: Flask) -> None:
    portal(runner, "create-org", "Acme Claims")
    result = create_user(runner, user_id="fran.helpdesk", profile="helpdesk")
    assert_failed(result, "Helpdesk")
    assert count(User) == 0


def test_create_user_refuses_a_taken_user_id(runner: FlaskCliRunner, app: Flask) -> None:
    portal(runner, "create-org", "Acme Claims")
    assert create_user(runner, user_id="alice.admin").exit_code == 0
    result = create_user(runner, user_id="ALICE.ADMIN")
    assert_failed(result, "already taken")
    assert count(User) == 1


# --------------------------------------------------------------------------------------------
# demo-data


@pytest.fixture
def instance(app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "instance"
    monkeypatch.setattr(app, "instance_path", str(folder))
    return folder


def _logins(output: str) -> dict[str, str]:
    """user id → password, from the lines demo-data prints."""
    found: dict[str, str] = {}
    for user in db.session.scalars(select(User)):
        lines = [
            line
            for line in output.splitlines()
            if re.search(rf"(?<!\S){re.escape(user.user_id)}(?!\S)", line)
        ]
        assert len(lines) == 1, (user.user_id, output)
        found[user.user_id] = lines[0].split()[-1]
    return found


def _snapshot() -> tuple[object, ...]:
    db.session.expire_all()
    users = sorted(
        (u.user_id, u.password_hash, u.profile, u.organisation_id, u.session_token)
        for u in db.session.scalars(select(User))
    )
    return (count(Organisation), count(AuditEvent), tuple(users))


@pytest.mark.config(PORTAL_ENV="production")
def test_demo_data_refuses_outside_development(
    runner: FlaskCliRunner, app: Flask, instance: Path
) -> None:
    result = portal(runner, "demo-data")
    assert_failed(result, "development")
    assert count(Organisation) == 0
    assert count(User) == 0
    assert not (instance / "demo-passwords.txt").exists()


@pytest.mark.config(PORTAL_ENV="development")
def test_demo_data_loads_the_demo_firm(runner: FlaskCliRunner, app: Flask, instance: Path) -> None:
    result = portal(runner, "demo-data")
    assert result.exit_code == 0, result.output

    orgs = list(db.session.scalars(select(Organisation)))
    assert [o.name for o in orgs] == [DEMO_ORG]
    users = list(db.session.scalars(select(User)))
    by_profile: dict[str, list[User]] = {}
    for user in users:
        by_profile.setdefault(user.profile, []).append(user)
    assert {p: len(us) for p, us in by_profile.items()} == {
        "administrator": 3,  # one with a TOTP second factor (R10)
        "claims_handler": 3,
        "helpdesk": 1,
        "portal_team": 1,
    }
    for user in users:
        member = user.profile in ("administrator", "claims_handler")
        assert user.organisation_id == (orgs[0].id if member else None)
        assert user.enabled
        assert user.active
        assert (user.expires_on is not None) == member

    logins = _logins(result.output)
    by_id = {u.user_id: u for u in users}
    for user_id, password in logins.items():
        assert passwords.verify_password(by_id[user_id].password_hash, password), user_id
    assert len(set(logins.values())) == len(logins)

    pw_file = instance / "demo-passwords.txt"
    assert stat.S_IMODE(pw_file.stat().st_mode) == 0o600
    assert _logins(pw_file.read_text()) == logins


@pytest.mark.config(PORTAL_ENV="development")
def test_demo_data_prints_the_second_factor_secret(
    runner: FlaskCliRunner, app: Flask, instance: Path
) -> None:
    from portal import clock
    from portal.cli import DEMO_MFA_ADMIN
    from portal.second_factor import service as second_factor
    from portal.second_factor import totp

    result = portal(runner, "demo-data")
    assert result.exit_code == 0, result.output
    found = re.search(r"TOTP secret ([A-Z2-7]{32})", result.output)
    assert found is not None, result.output
    assert f"oathtool --totp -b {found.group(1)}" in result.output
    admin = db.session.scalar(select(User).where(User.user_id == DEMO_MFA_ADMIN))
    assert admin is not None
    factors = second_factor.factors(admin.id)
    assert len(factors) == 1
    sealed = factors[0].totp_secret_sealed
    assert sealed is not None
    assert totp.unseal(sealed) == found.group(1)
    code = totp.code_at(found.group(1), clock.now())
    assert totp.matching_step(found.group(1), code, clock.now(), after=factors[0].totp_last_step)


@pytest.mark.config(PORTAL_ENV="development")
def test_demo_data_once_changes_nothing(runner: FlaskCliRunner, app: Flask, instance: Path) -> None:
    first = portal(runner, "demo-data", "--once")
    assert first.exit_code == 0, first.output
    before = _snapshot()
    pw_text = (instance / "demo-passwords.txt").read_text()

    again = portal(runner, "demo-data", "--once")
    assert again.exit_code == 0, again.output
    assert _snapshot() == before
    assert (instance / "demo-passwords.txt").read_text() == pw_text
    assert _logins(again.output) == _logins(first.output)  # the logins are printed again


@pytest.mark.config(PORTAL_ENV="development")
def test_demo_data_twice_without_once_fails(
    runner: FlaskCliRunner, app: Flask, instance: Path
) -> None:
    assert portal(runner, "demo-data").exit_code == 0
    before = _snapshot()
    result = portal(runner, "demo-data")
    assert_failed(result, "already loaded")
    assert _snapshot() == before

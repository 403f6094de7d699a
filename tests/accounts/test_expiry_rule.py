"""One expiry rule (the spec's R3 as amended): a new expiry date must be *after* today, in the
portal's time zone, on every path that sets one: the Console's create form and inline expiry,
the operator area, the CLI and the service itself.  Each refusal says so by the field and
changes nothing.  (Before, the Console's inline expiry took today: the user expired at once,
and an organisation's last Administrator could expire itself.)

Runs on SQLite and, when PORTAL_TEST_DATABASE_URL is set, PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient
from flask.testing import FlaskCliRunner
from sqlalchemy import func
from sqlalchemy import select

from portal import clock
from portal.accounts import service
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.db import write_transaction
from portal.extensions import db
from tests.factories import login
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import refresh
from tests.helpers import audit_events
from tests.helpers import sign_in_as

HX = {"HX-Request": "true"}
AFTER_TODAY = "The expiry date must be after today"


def user_count() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(User)) or 0


def admin_client(app: Flask, org: object, user_id: str = "the.admin") -> tuple[FlaskClient, User]:
    client = app.test_client()
    admin = make_user(org, user_id=user_id, profile=Profile.ADMINISTRATOR)  # type: ignore[arg-type]
    assert login(client, admin.user_id, door="console").status_code == 302
    return client, admin


def portal(runner: FlaskCliRunner, *args: str) -> Result:
    return runner.invoke(args=["portal", *args])


# --- the Console -----------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [0, -1])
def test_console_create_refuses_today_and_earlier(app: Flask, offset: int) -> None:
    client, _ = admin_client(app, make_org())
    before = user_count()
    response = client.post(
        "/console/users/new",
        data={
            "user_id": "new.user",
            "full_name": "New User",
            "email": "new@example.com",
            "profile": "claims_handler",
            "expires_on": (clock.today() + timedelta(days=offset)).isoformat(),
        },
    )
    body = response.get_data(as_text=True)
    assert AFTER_TODAY in body
    assert 'id="expires_on-error"' in body
    assert user_count() == before


def test_console_create_takes_tomorrow(app: Flask) -> None:
    client, _ = admin_client(app, make_org())
    tomorrow = clock.today() + timedelta(days=1)
    response = client.post(
        "/console/users/new",
        data={
            "user_id": "new.user",
            "full_name": "New User",
            "email": "new@example.com",
            "profile": "claims_handler",
            "expires_on": tomorrow.isoformat(),
        },
    )
    assert response.status_code == 200
    assert service.find_user("new.user").expires_on == tomorrow  # type: ignore[union-attr]


def test_console_inline_expiry_refuses_today(app: Flask) -> None:
    org = make_org()
    client, _ = admin_client(app, org)
    handler = make_user(org)
    old = refresh(handler).expires_on
    response = client.post(
        f"/console/users/{handler.id}/expiry",
        data={"expires_on": clock.today().isoformat()},
        headers=HX,
    )
    assert response.status_code == 422
    assert f"{AFTER_TODAY}." in response.get_data(as_text=True)
    assert "HX-Trigger" not in response.headers
    fresh = refresh(handler)
    assert (fresh.expires_on, fresh.enabled) == (old, True)
    assert audit_events(handler, "expiry_changed") == []
    assert [e.reason for e in audit_events(handler, "expiry_refused")] == ["refused_past_date"]


def test_the_last_administrator_cannot_expire_itself_but_may_choose_tomorrow(app: Flask) -> None:
    client, admin = admin_client(app, make_org())
    today = clock.today()
    refused = client.post(
        f"/console/users/{admin.id}/expiry", data={"expires_on": today.isoformat()}, headers=HX
    )
    assert refused.status_code == 422
    assert refresh(admin).expires_on != today
    assert client.get("/console/").status_code == 200  # still logged in, still has access

    tomorrow = today + timedelta(days=1)
    taken = client.post(
        f"/console/users/{admin.id}/expiry", data={"expires_on": tomorrow.isoformat()}, headers=HX
    )
    assert taken.status_code == 200
    assert refresh(admin).expires_on == tomorrow
    assert client.get("/console/").status_code == 200


# --- the operator area -----------------------------------------------------------------------


def test_operator_first_administrator_refuses_today(app: Flask) -> None:
    org = make_org()
    client = app.test_client()
    sign_in_as(client, Profile.PORTAL_TEAM)
    before = user_count()
    response = client.post(
        f"/operator/organisations/{org.id}/administrators/new",
        data={
            "user_id": "first.admin",
            "full_name": "First Admin",
            "email": "first@example.com",
            "expires_on": clock.today().isoformat(),
        },
    )
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "The new expiry date must be after today" in body
    assert 'id="expires_on-error"' in body
    assert user_count() == before


# --- the service (any path, present or future) ------------------------------------------------


def test_the_service_refuses_a_date_not_after_the_day_of_now(app: Flask) -> None:
    org = make_org()
    now = clock.now()
    with pytest.raises(service.AccountError) as refused, write_transaction(db.session):
        service.create_user(
            user_id="svc.user",
            full_name="Svc User",
            email="svc@example.com",
            profile=Profile.CLAIMS_HANDLER,
            organisation=org,
            expires_on=clock.local_date(now),
            actor=None,
            now=now,
        )
    assert str(refused.value) == AFTER_TODAY
    assert refused.value.field == "expires_on"
    assert service.find_user("svc.user") is None


# --- the CLI ---------------------------------------------------------------------------------


def test_cli_create_user_refuses_today(runner: FlaskCliRunner) -> None:
    make_org("Acme")
    result = portal(
        runner,
        *("create-user", "--org", "Acme", "--user-id", "cli.user", "--profile"),
        *("claims_handler", "--email", "cli@example.com", "--name", "Cli User"),
        *("--expires-on", clock.today().isoformat()),
    )
    assert result.exit_code != 0
    assert "--expires-on must be a date after today" in result.output
    assert "Traceback" not in result.output
    assert service.find_user("cli.user") is None


def test_cli_extend_sets_the_date_audited_like_the_operator(runner: FlaskCliRunner) -> None:
    handler = make_user(make_org())
    old = refresh(handler).expires_on
    assert old is not None
    new_date = old + timedelta(days=100)
    result = portal(runner, "extend", handler.user_id.upper(), "--to", new_date.isoformat())
    assert result.exit_code == 0, result.output
    assert f"expiry date now {new_date} (was {old}" in result.output
    assert refresh(handler).expires_on == new_date
    (changed,) = audit_events(handler, "expiry_changed")
    assert (changed.actor, changed.actor_id) == ("system", None)
    assert changed.details == f"{old} -> {new_date}"

    again = portal(runner, "extend", handler.user_id, "--to", new_date.isoformat())
    assert again.exit_code == 0, again.output
    assert "unchanged" in again.output
    assert len(audit_events(handler, "expiry_changed")) == 1


@pytest.mark.parametrize("offset", [0, -1])
def test_cli_extend_refuses_today_and_earlier(runner: FlaskCliRunner, offset: int) -> None:
    handler = make_user(make_org())
    old = refresh(handler).expires_on
    day = clock.today() + timedelta(days=offset)
    result = portal(runner, "extend", handler.user_id, "--to", day.isoformat())
    assert result.exit_code != 0
    assert AFTER_TODAY in result.output
    assert "Traceback" not in result.output
    assert refresh(handler).expires_on == old
    assert [e.reason for e in audit_events(handler, "expiry_refused")] == ["refused_past_date"]


def test_cli_extend_of_an_unknown_user_or_a_bad_date(runner: FlaskCliRunner) -> None:
    unknown = portal(runner, "extend", "nobody.here", "--to", "2999-01-01")
    assert unknown.exit_code != 0
    assert "No user with the User ID 'nobody.here'" in unknown.output
    garbled = portal(runner, "extend", "nobody.here", "--to", "31/02/2027")
    assert garbled.exit_code == 2
    assert "Traceback" not in garbled.output


def test_cli_extend_then_enable_restores_an_expired_user(runner: FlaskCliRunner) -> None:
    handler = make_user(make_org(), expires_on=clock.today())
    refused = portal(runner, "enable", handler.user_id)
    assert refused.exit_code != 0
    new_date = clock.today() + timedelta(days=30)
    extended = portal(runner, "extend", handler.user_id, "--to", new_date.isoformat())
    assert extended.exit_code == 0, extended.output
    assert f"portal enable {handler.user_id}" in extended.output  # access is still off
    enabled = portal(runner, "enable", handler.user_id)
    assert enabled.exit_code == 0, enabled.output
    fresh = refresh(handler)
    assert (fresh.enabled, fresh.active, fresh.expires_on) == (True, True, new_date)


def test_cli_enable_reports_an_expired_user_as_due(runner: FlaskCliRunner) -> None:
    """Enabled still ticked (the nightly sweep has not run), but the date is reached: it
    cannot log in, so "unchanged has access" would be false."""
    handler = make_user(make_org(), expires_on=clock.today())
    result = portal(runner, "enable", handler.user_id)
    assert result.exit_code != 0
    assert "due" in result.output
    assert "has access" not in result.output
    assert f"portal extend {handler.user_id} --to" in result.output
    fresh = refresh(handler)
    assert (fresh.enabled, fresh.active, fresh.disabled_reason) == (False, True, "expiry")
    assert [e.reason for e in audit_events(handler, "system_disabled")] == ["expiry"]


def test_cli_enable_reports_an_inactive_user_as_due_and_restores_it(
    runner: FlaskCliRunner,
) -> None:
    created = clock.now() - timedelta(days=91)
    handler = make_user(make_org(), created_at=created)
    result = portal(runner, "enable", handler.user_id)
    assert result.exit_code == 0, result.output
    assert "was due (it was not used for more than 90 days)" in result.output
    assert f"{handler.user_id}: now has access" in result.output
    fresh = refresh(handler)
    assert (fresh.enabled, fresh.active, fresh.disabled_reason) == (True, True, None)
    assert fresh.last_use_at >= clock.now() - timedelta(minutes=5)  # the clock restarted (R6)
    assert [e.reason for e in audit_events(handler, "system_disabled")] == ["inactivity"]
    assert len(audit_events(handler, "enabled")) == 1


def test_expiry_dates_are_days_in_the_portal_time_zone(app: Flask) -> None:
    """At 23:30 UTC on 30 June it is already 1 July in London: 1 July is today, refused."""
    with clock.frozen(datetime(2026, 6, 30, 23, 30, tzinfo=UTC)):
        org = make_org()
        client, _ = admin_client(app, org)
        handler = make_user(org)
        response = client.post(
            f"/console/users/{handler.id}/expiry",
            data={"expires_on": date(2026, 7, 1).isoformat()},
            headers=HX,
        )
        assert response.status_code == 422
        assert refresh(handler).expires_on != date(2026, 7, 1)
        taken = client.post(
            f"/console/users/{handler.id}/expiry",
            data={"expires_on": date(2026, 7, 2).isoformat()},
            headers=HX,
        )
        assert taken.status_code == 200

"""Break-glass CLI (issue 3, point 9): ``flask --app app portal enable|disable USER_ID`` goes
through the same service, rules and audit trail as the Console, with "system" as the actor.

Runs on SQLite and, when PORTAL_TEST_DATABASE_URL is set, PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta

from click.testing import Result
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select

from portal import clock
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.audit.models import AuditEvent
from portal.db import write_transaction
from portal.extensions import db
from portal.jobs import nightly
from tests.factories import lock_out
from tests.factories import login
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import refresh
from tests.factories import remove_access
from tests.helpers import audit_events


def portal(runner: FlaskCliRunner, *args: str) -> Result:
    return runner.invoke(args=["portal", *args])


def flags(user: User) -> tuple[bool, bool, str | None]:
    fresh = refresh(user)
    return fresh.enabled, fresh.active, fresh.disabled_reason


def sweep() -> None:
    with write_transaction(db.session):
        nightly.sweep(now=clock.now(), today=clock.today())


def test_enable_restores_a_locked_out_administrator(app: Flask, runner: FlaskCliRunner) -> None:
    org = make_org()
    admin = lock_out(make_user(org, user_id="only.admin", profile=Profile.ADMINISTRATOR))
    assert flags(admin) == (False, True, "lockout")

    result = portal(runner, "enable", "ONLY.ADMIN")  # User IDs ignore case
    assert result.exit_code == 0, result.output
    assert "only.admin" in result.output
    assert "has access" in result.output
    assert flags(admin) == (True, True, None)
    assert refresh(admin).failed_attempts == 0

    enabled = audit_events(admin, "enabled")
    assert len(enabled) == 1
    assert enabled[0].actor == "system"
    assert enabled[0].actor_id is None
    assert enabled[0].organisation_id == org.id

    # The Administrator can log in to the Console again.
    response = login(app.test_client(), admin.user_id, door="console")
    assert response.status_code == 302
    assert response.headers["Location"] == "/console/"


def test_enable_refuses_an_expired_user_with_a_clear_message(runner: FlaskCliRunner) -> None:
    org = make_org()
    admin = make_user(
        org, profile=Profile.ADMINISTRATOR, expires_on=clock.today() - timedelta(days=1)
    )
    sweep()
    assert flags(admin) == (False, True, "expiry")

    result = portal(runner, "enable", admin.user_id)
    assert result.exit_code != 0
    assert "extend the expiry date first" in result.output
    assert "Traceback" not in result.output
    assert flags(admin) == (False, True, "expiry")
    refused = audit_events(admin, "enable_refused")
    assert [(e.actor, e.reason) for e in refused] == [("system", "refused_expired")]
    assert audit_events(admin, "enabled") == []


def test_enable_after_access_was_removed(runner: FlaskCliRunner) -> None:
    org = make_org()
    handler = remove_access(make_user(org))
    result = portal(runner, "enable", handler.user_id)
    assert result.exit_code == 0, result.output
    assert flags(handler) == (True, True, None)


def test_enable_of_a_user_with_access_changes_nothing(runner: FlaskCliRunner) -> None:
    org = make_org()
    handler = make_user(org)
    result = portal(runner, "enable", handler.user_id)
    assert result.exit_code == 0, result.output
    assert "unchanged" in result.output
    assert flags(handler) == (True, True, None)
    assert [e.kind for e in audit_events(handler)] == ["user_created"]


def test_disable_removes_access_and_ends_sessions(app: Flask, runner: FlaskCliRunner) -> None:
    org = make_org()
    handler = make_user(org)
    theirs = app.test_client()
    assert login(theirs, handler.user_id).status_code == 302
    assert theirs.get("/portal/").status_code == 200

    result = portal(runner, "disable", handler.user_id)
    assert result.exit_code == 0, result.output
    assert "access removed" in result.output
    assert flags(handler) == (False, False, None)
    removed = audit_events(handler, "access_removed")
    assert [(e.actor, e.actor_id) for e in removed] == [("system", None)]

    ended = theirs.get("/portal/")
    assert ended.status_code == 302
    assert ended.headers["Location"].startswith("/portal/login")

    again = portal(runner, "disable", handler.user_id)  # idempotent
    assert again.exit_code == 0, again.output
    assert len(audit_events(handler, "access_removed")) == 1


def test_disable_of_a_system_disabled_user_needs_the_r5_steps(runner: FlaskCliRunner) -> None:
    """As in the Console (R5): unchecking an unchecked Enabled changes nothing."""
    org = make_org()
    handler = lock_out(make_user(org))
    result = portal(runner, "disable", handler.user_id)
    assert result.exit_code == 0, result.output
    assert flags(handler) == (False, True, "lockout")
    assert portal(runner, "enable", handler.user_id).exit_code == 0
    assert portal(runner, "disable", handler.user_id).exit_code == 0
    assert flags(handler) == (False, False, None)


def test_unknown_user_id_is_a_clear_error(runner: FlaskCliRunner) -> None:
    for command in ("enable", "disable"):
        result = portal(runner, command, "nobody.here")
        assert result.exit_code != 0
        assert "No user with the User ID 'nobody.here'" in result.output
        assert "Traceback" not in result.output
    db.session.rollback()
    assert db.session.scalars(select(AuditEvent)).all() == []


def test_user_id_is_required(runner: FlaskCliRunner) -> None:
    result = portal(runner, "enable")
    assert result.exit_code == 2
    assert "USER_ID" in result.output

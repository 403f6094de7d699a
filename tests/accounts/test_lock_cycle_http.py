"""R1 as amended over HTTP: a lockout stops guessing.

Once an account is without access, a right password shows the specific reason only while fewer
than five wrong passwords were tried since access was lost; then every attempt, right or wrong,
gets the generic LOGIN-01 (the same page as an unknown User ID) until access is restored, and
every attempt is still audited.  Each way of restoring access (Console, Portal team, CLI, a
password reset) starts a new cycle: the count goes back to 0.

Runs on SQLite and, when PORTAL_TEST_DATABASE_URL is set, on PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal import clock
from portal.accounts import password_reset
from portal.accounts import passwords
from portal.accounts import rules
from portal.accounts import service
from portal.accounts import tokens
from portal.accounts.models import Organisation
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.audit.models import AuditEvent
from portal.db import write_transaction
from portal.extensions import db
from tests.factories import PASSWORD
from tests.factories import login
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import message_codes
from tests.factories import refresh
from tests.factories import remove_access
from tests.helpers import audit_count
from tests.helpers import sign_in_as

WRONG = "not the right password at all"
NEW_PASSWORD = "a brand new phrase for my account"


def without_access(user: User) -> int:
    return refresh(user).failed_attempts_without_access


def page(app: Flask, user_id: str, password: str) -> tuple[int, str, list[str]]:
    """A new browser's answer to one attempt: status, body without the CSRF token and the echo
    of the User ID typed, and the codes shown."""
    client = app.test_client()
    client.get("/portal/login")
    response = login(client, user_id, password)
    body = response.get_data(as_text=True)
    body = re.sub(r'name="csrf_token"[^>]*value="[^"]*"', "", body)
    body = re.sub(r'"X-CSRFToken": "[^"]*"', "", body)
    body = body.replace(f'value="{user_id}"', 'value=""')
    return response.status_code, body, message_codes(response)


def lock_by_http(client: FlaskClient, user: User) -> None:
    for _ in range(rules.LOCKOUT_AFTER):
        assert message_codes(login(client, user.user_id, WRONG)) == ["LOGIN-01"]
    assert refresh(user).disabled_reason == "lockout"


def test_after_five_wrong_passwords_since_the_lockout_the_right_one_learns_nothing(
    app: Flask, client: FlaskClient
) -> None:
    user = make_user()
    lock_by_http(client, user)
    assert without_access(user) == 0  # the five that locked count towards the lockout only
    for attempt in range(1, rules.GUESSES_WITHOUT_ACCESS):
        assert message_codes(login(client, user.user_id, WRONG)) == ["LOGIN-01"]
        assert without_access(user) == attempt
        assert message_codes(login(client, user.user_id)) == ["LOGIN-03"], attempt
    # the fifth wrong password since the lockout: from now on the generic answer, always
    assert message_codes(login(client, user.user_id, WRONG)) == ["LOGIN-01"]
    assert without_access(user) == rules.GUESSES_WITHOUT_ACCESS
    for _ in range(3):
        assert message_codes(login(client, user.user_id)) == ["LOGIN-01"]
    more = 20
    for _ in range(more):
        login(client, user.user_id, WRONG)

    # the right password's page is the unknown User ID's page, byte for byte
    assert page(app, user.user_id, PASSWORD) == page(app, "no.such.user", WRONG)
    assert page(app, user.user_id, PASSWORD) == page(app, user.user_id, WRONG)

    fresh = refresh(user)
    assert (fresh.enabled, fresh.disabled_reason, fresh.failed_attempts) == (False, "lockout", 5)
    assert fresh.failed_attempts_without_access == rules.GUESSES_WITHOUT_ACCESS + more + 1
    # every attempt is still recorded: 5 + 4 + 1 + 20 + 1 wrong, 4 + 3 + 2 right
    assert audit_count(user, "login_failed") == 5 + 4 + 1 + more + 1
    assert audit_count(user, "login_refused") == 4 + 3 + 2
    assert audit_count(user, "locked_out") == 1
    hidden = db.session.scalars(
        select(AuditEvent.details).where(
            AuditEvent.subject_id == user.id, AuditEvent.kind == "login_refused"
        )
    ).all()
    assert hidden.count(service.HIDDEN_REASON) == 3 + 2  # the Administrators can see why


def _disabled(kind: str, org: Organisation) -> tuple[User, str]:
    """A user without access of ``kind`` and the code a right password shows at first."""
    if kind == "removed":
        return remove_access(make_user(org)), "LOGIN-07"
    if kind == "inactive":
        return make_user(org, created_at=clock.now() - timedelta(days=91)), "LOGIN-05"
    return make_user(org, expires_on=clock.today()), "LOGIN-06"  # expired (due at login)


@pytest.mark.parametrize("kind", ["removed", "inactive", "expired"])
def test_every_kind_of_no_access_stops_guessing(client: FlaskClient, kind: str) -> None:
    org = make_org()
    make_user(org, profile=Profile.ADMINISTRATOR)
    user, code = _disabled(kind, org)
    for _ in range(rules.GUESSES_WITHOUT_ACCESS - 1):
        assert message_codes(login(client, user.user_id, WRONG)) == ["LOGIN-01"]
    assert message_codes(login(client, user.user_id)) == [code]
    assert message_codes(login(client, user.user_id, WRONG)) == ["LOGIN-01"]
    assert message_codes(login(client, user.user_id)) == ["LOGIN-01"]
    assert without_access(user) == rules.GUESSES_WITHOUT_ACCESS


# --- every way back to access starts a new cycle --------------------------------------------


def _console(app: Flask, user: User) -> None:
    client = app.test_client()
    admin = make_user(user.organisation, profile=Profile.ADMINISTRATOR)
    assert login(client, admin.user_id, door="console").status_code == 302
    response = client.post(f"/console/users/{user.id}/enabled", data={"enabled": "true"})
    assert response.status_code in (200, 302, 303), response.status_code


def _portal_team(app: Flask, user: User) -> None:
    client = app.test_client()
    sign_in_as(client, Profile.PORTAL_TEAM)
    response = client.post(f"/operator/users/{user.id}/enable", data={})
    assert response.status_code in (200, 302, 303), response.get_data(as_text=True)[:500]


def _cli(app: Flask, user: User) -> None:
    result = app.test_cli_runner().invoke(args=["portal", "enable", user.user_id])
    assert result.exit_code == 0, result.output


def _self_service_reset(app: Flask, user: User) -> None:
    """R7's completion (the emailed link's last step), through the service."""
    token = tokens.new_token()
    now = clock.now()
    fresh = refresh(user)
    with write_transaction(db.session):
        tokens.issue(fresh, token=token, now=now, minutes=60)
    done = password_reset.complete(
        tokens.hash_token(token),
        passwords.hash_password(NEW_PASSWORD),
        now=now,
        today=clock.today(),
    )
    assert isinstance(done, password_reset.Completed), done
    assert done.has_access


RESTORES: dict[str, Callable[[Flask, User], None]] = {
    "console": _console,
    "portal-team": _portal_team,
    "cli": _cli,
    "password-reset": _self_service_reset,
}


@pytest.mark.parametrize("how", RESTORES)
def test_restoring_access_starts_a_new_cycle(app: Flask, client: FlaskClient, how: str) -> None:
    org = make_org()
    make_user(org, profile=Profile.ADMINISTRATOR)
    user = make_user(org, profile=Profile.ADMINISTRATOR)
    lock_by_http(client, user)
    for _ in range(rules.GUESSES_WITHOUT_ACCESS + 2):
        login(client, user.user_id, WRONG)
    assert message_codes(login(client, user.user_id, door="console")) == ["LOGIN-01"]
    assert without_access(user) == rules.GUESSES_WITHOUT_ACCESS + 2

    RESTORES[how](app, user)

    fresh = refresh(user)
    assert (fresh.enabled, fresh.failed_attempts, fresh.failed_attempts_without_access) == (
        True,
        0,
        0,
    )
    password = NEW_PASSWORD if how == "password-reset" else PASSWORD
    # a new cycle: locked again, the right password shows the reason again
    lock_by_http(client, user)
    assert message_codes(login(client, user.user_id, password, door="console")) == ["LOGIN-02"]


def test_a_reset_after_expiry_restores_nothing_and_keeps_the_count(app: Flask) -> None:
    """R7 after ``expiry`` changes the password but not the access: the cycle goes on."""
    org = make_org()
    make_user(org, profile=Profile.ADMINISTRATOR)
    admin = make_user(org, profile=Profile.ADMINISTRATOR, expires_on=clock.today())
    client = app.test_client()
    for _ in range(rules.GUESSES_WITHOUT_ACCESS):
        login(client, admin.user_id, WRONG, door="console")
    token = tokens.new_token()
    fresh = refresh(admin)
    with write_transaction(db.session):
        tokens.issue(fresh, token=token, now=clock.now(), minutes=60)
    done = password_reset.complete(
        tokens.hash_token(token),
        passwords.hash_password(NEW_PASSWORD),
        now=clock.now(),
        today=clock.today(),
    )
    assert isinstance(done, password_reset.Completed)
    assert not done.has_access
    assert without_access(admin) == rules.GUESSES_WITHOUT_ACCESS
    codes = message_codes(login(client, admin.user_id, NEW_PASSWORD, door="console"))
    assert codes == ["LOGIN-01"]


def test_the_count_is_kept_while_a_user_expires_between_attempts(client: FlaskClient) -> None:
    """A wrong password on an account that is due (expired, not yet swept) disables it and is
    the first guess counted without access."""
    user = make_user(expires_on=clock.today() + timedelta(days=1))
    login(client, user.user_id, WRONG)
    with clock.frozen(clock.now() + timedelta(days=2)):
        login(client, user.user_id, WRONG)
        fresh = refresh(user)
        assert (fresh.enabled, fresh.disabled_reason) == (False, "expiry")
        assert (fresh.failed_attempts, fresh.failed_attempts_without_access) == (1, 1)


def test_the_portal_team_sees_the_count_without_access(app: Flask, client: FlaskClient) -> None:
    user = make_user()
    lock_by_http(client, user)
    for _ in range(7):
        login(client, user.user_id, WRONG)
    operator = app.test_client()
    sign_in_as(operator, Profile.PORTAL_TEAM)
    body = operator.get(f"/operator/users/{user.id}").get_data(as_text=True)
    assert re.search(r"Wrong passwords since access was lost</dt><dd>7</dd>", body), body[:2000]

"""Resetting a lost second factor (docs/rules.md R10; docs/security.md, "Losing a second
factor and the two-person rule"): another Administrator of the firm from the Console; the last
Administrator with access, and staff, only by two Portal team members; the break-glass CLI.

Runs on SQLite and, when PORTAL_TEST_DATABASE_URL is set, PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask.testing import FlaskCliRunner
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from portal import clock
from portal.accounts import tokens
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.audit import kinds
from portal.db import write_transaction
from portal.extensions import db
from portal.mail_queue import QueuedMail
from portal.second_factor import resets
from portal.second_factor.models import SecondFactorReset
from tests.factories import login
from tests.factories import make_org
from tests.factories import make_user
from tests.helpers import audit_events
from tests.helpers import door_of
from tests.helpers import sign_in_as
from tests.helpers import timeline
from tests.operator.helpers import make_request
from tests.second_factor.factor_helpers import GIVEN
from tests.second_factor.factor_helpers import factor_count
from tests.second_factor.factor_helpers import give_factor
from tests.second_factor.helpers import STEP
from tests.second_factor.helpers import code_step
from tests.second_factor.helpers import current_code

START = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def frozen() -> object:
    with clock.frozen(START):
        yield None


def logged_in(app: Flask, user: User, secret: str | None = None) -> FlaskClient:
    """A second browser, logged in as ``user`` (past the code step with ``secret``'s code)."""
    other = app.test_client()
    response = login(other, user.user_id, door=door_of(Profile(user.profile)))
    assert response.status_code == 302
    if secret is not None:
        assert response.headers["Location"].endswith(STEP)
        response = code_step(other, current_code(secret))
        assert response.status_code == 302
    assert "/login" not in response.headers["Location"]
    return other


def assert_session_ended(client: FlaskClient, user: User) -> None:
    home = "/console/" if user.profile == Profile.ADMINISTRATOR else "/portal/"
    response = client.get(home)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def reset_mails(user: User) -> list[QueuedMail]:
    db.session.rollback()
    return list(
        db.session.scalars(
            select(QueuedMail).where(
                QueuedMail.purpose == resets.MAIL_PURPOSE, QueuedMail.to_address == user.email
            )
        )
    )


# --- another Administrator of the firm ---------------------------------------------------------


def test_another_administrator_resets_a_factor(app: Flask, client: FlaskClient) -> None:
    org = make_org()
    admin = sign_in_as(client, Profile.ADMINISTRATOR, org)
    handler = make_user(org)
    handler_browser = logged_in(app, handler, give_factor(handler))

    page = client.get(f"/console/users/{handler.id}")
    assert f"/console/users/{handler.id}/second-factor-reset" in page.get_data(as_text=True)
    confirm = client.get(f"/console/users/{handler.id}/second-factor-reset")
    assert confirm.status_code == 200
    assert "Reset the second factor of" in confirm.get_data(as_text=True)

    # Not confirmed: nothing happens, back to the question.
    response = client.post(f"/console/users/{handler.id}/second-factor-reset")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/second-factor-reset")
    assert audit_events(handler, kinds.SECOND_FACTOR_RESET) == []

    response = client.post(
        f"/console/users/{handler.id}/second-factor-reset", data={"confirmed": "yes"}
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/console/users/{handler.id}")
    done = audit_events(handler, kinds.SECOND_FACTOR_RESET)
    assert len(done) == 1
    assert done[0].actor_id == admin.id
    assert factor_count(handler) == 0
    assert_session_ended(handler_browser, handler)
    (mail,) = reset_mails(handler)
    assert "your second factor was reset" in mail.subject
    assert handler.user_id in mail.body


def test_the_last_administrator_with_access_is_sent_to_the_portal_team(
    client: FlaskClient,
) -> None:
    admin = sign_in_as(client, Profile.ADMINISTRATOR)
    give_factor(admin)

    confirm = client.get(f"/console/users/{admin.id}/second-factor-reset")
    text = confirm.get_data(as_text=True)
    assert "only the Portal team can reset" in text
    assert "Reset second factor</button>" not in text

    response = client.post(
        f"/console/users/{admin.id}/second-factor-reset", data={"confirmed": "yes"}
    )
    assert response.status_code == 422
    assert "only the Portal team can reset" in response.get_data(as_text=True)
    assert factor_count(admin) == GIVEN
    assert audit_events(admin, kinds.SECOND_FACTOR_RESET) == []
    (refused,) = audit_events(admin, kinds.SECOND_FACTOR_RESET_REFUSED)
    assert refused.reason == resets.Outcome.LAST_ADMINISTRATOR
    assert reset_mails(admin) == []


def test_an_administrator_cannot_reset_their_own_factor(client: FlaskClient) -> None:
    org = make_org()
    admin = sign_in_as(client, Profile.ADMINISTRATOR, org)
    make_user(org, profile=Profile.ADMINISTRATOR)  # so not the last one
    give_factor(admin)
    response = client.post(
        f"/console/users/{admin.id}/second-factor-reset", data={"confirmed": "yes"}
    )
    assert response.status_code == 422
    assert "You cannot reset your own second factor" in response.get_data(as_text=True)
    assert factor_count(admin) == GIVEN


def test_the_last_administrator_rule_counts_access_as_the_rules_say(app: Flask) -> None:
    """An Administrator whose own access is gone counts for nothing: the one left with access is
    the last one, and only the Portal team resets that factor."""
    org = make_org()
    gone = make_user(org, profile=Profile.ADMINISTRATOR)
    last = make_user(org, profile=Profile.ADMINISTRATOR)
    with write_transaction(db.session):
        db.session.execute(update(User).where(User.id == gone.id).values(expires_on=START.date()))
    now = clock.now()
    with write_transaction(db.session):
        result = resets.admin_reset(gone, last, now=now, today=clock.today())
    assert result.outcome is resets.Outcome.LAST_ADMINISTRATOR


def test_another_firms_user_is_not_found(client: FlaskClient) -> None:
    sign_in_as(client, Profile.ADMINISTRATOR)
    stranger = make_user(make_org())
    assert client.get(f"/console/users/{stranger.id}/second-factor-reset").status_code == 404
    response = client.post(
        f"/console/users/{stranger.id}/second-factor-reset", data={"confirmed": "yes"}
    )
    assert response.status_code == 404
    assert audit_events(stranger, kinds.SECOND_FACTOR_RESET_REFUSED) == []


# --- the Portal team: two people ---------------------------------------------------------------


def last_administrator() -> tuple[str, User]:
    """The only Administrator of a new firm, with a TOTP factor; (its secret, it)."""
    admin = make_user(make_org(), profile=Profile.ADMINISTRATOR)
    return give_factor(admin), admin


def ask(client: FlaskClient, user: User, reference: str) -> object:
    return client.post(
        f"/operator/users/{user.id}/second-factor-reset", data={"helpdesk_reference": reference}
    )


def status(req: SecondFactorReset) -> str:
    return resets.status_of(req, clock.now())


def pending(user: User) -> SecondFactorReset:
    db.session.rollback()
    found = db.session.scalar(select(SecondFactorReset).where(SecondFactorReset.user_id == user.id))
    assert found is not None
    return found


def test_two_person_reset(app: Flask, client: FlaskClient, frozen: object) -> None:
    first = sign_in_as(client, Profile.PORTAL_TEAM)
    second = make_user(profile=Profile.PORTAL_TEAM)
    second_browser = logged_in(app, second)
    secret, admin = last_administrator()
    admin_browser = logged_in(app, admin, secret)
    hd = make_request(user_id=admin.user_id)

    page = client.get(f"/operator/users/{admin.id}").get_data(as_text=True)
    assert "Ask for a second-factor reset" in page

    # The reference must name a request that exists.
    for bad, said in (("", "Give the reference"), ("HD-999999", "There is no helpdesk request")):
        response = ask(client, admin, bad)
        assert response.status_code == 422  # type: ignore[attr-defined]
        assert said in response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert db.session.scalar(select(SecondFactorReset)) is None

    response = ask(client, admin, hd.reference)
    assert response.status_code == 302  # type: ignore[attr-defined]
    req = pending(admin)
    assert (status(req), req.requested_by_id, req.helpdesk_reference) == (
        "pending",
        first.id,
        hd.reference,
    )
    assert req.expires_at == START + timedelta(hours=24)
    assert factor_count(admin) == GIVEN  # nothing happens yet
    (asked,) = audit_events(admin, kinds.SECOND_FACTOR_RESET_REQUESTED)
    assert asked.actor_id == first.id
    assert hd.reference in (asked.details or "")

    # A second request for the same user while one waits: refused.
    assert ask(client, admin, hd.reference).status_code == 422  # type: ignore[attr-defined]

    # The requester cannot approve their own request.
    listing = client.get("/operator/second-factor-resets").get_data(as_text=True)
    assert "You asked: another member approves." in listing
    response = client.post(f"/operator/second-factor-resets/{req.id}/approve")
    assert response.status_code == 422
    assert "you cannot approve it" in response.get_data(as_text=True)
    assert status(pending(admin)) == "pending"
    assert factor_count(admin) == GIVEN
    refusals = audit_events(admin, kinds.SECOND_FACTOR_RESET_REFUSED)
    assert [(e.actor_id, e.reason) for e in refusals] == [
        (first.id, resets.Outcome.ALREADY_OPEN),
        (first.id, resets.Outcome.OWN_REQUEST),
    ]

    # A different member approves: done.
    listing = second_browser.get("/operator/second-factor-resets").get_data(as_text=True)
    assert "Approve and reset" in listing
    response = second_browser.post(f"/operator/second-factor-resets/{req.id}/approve")
    assert response.status_code == 302
    done = pending(admin)
    assert (status(done), done.approved_by_id, done.approved_at) == ("approved", second.id, START)
    assert factor_count(admin) == 0
    assert_session_ended(admin_browser, admin)
    (approved,) = audit_events(admin, kinds.SECOND_FACTOR_RESET_APPROVED)
    assert approved.actor_id == second.id
    (reset,) = audit_events(admin, kinds.SECOND_FACTOR_RESET)
    assert reset.actor_id == second.id
    assert first.user_id in (reset.details or "")
    assert len(reset_mails(admin)) == 1
    details = [e.details or "" for e in timeline(hd)]
    assert any("Asked for a second-factor reset" in d for d in details)
    assert any("Approved the second-factor reset" in d for d in details)

    # Decided: neither may act on it again.
    assert client.post(f"/operator/second-factor-resets/{req.id}/cancel").status_code == 422


def test_the_table_refuses_a_self_approval(app: Flask) -> None:
    """The CHECK behind the rule: even code that forgot it cannot store a self-approval."""
    member = make_user(profile=Profile.PORTAL_TEAM)
    _, admin = last_administrator()
    hd = make_request()
    with write_transaction(db.session):
        result = resets.request_reset(member, admin, hd, now=clock.now(), today=clock.today())
    assert result.request is not None
    with pytest.raises(IntegrityError), write_transaction(db.session):
        db.session.execute(
            update(SecondFactorReset)
            .where(SecondFactorReset.id == result.request.id)
            .values(approved_by_id=member.id, approved_at=clock.now())
        )
    db.session.rollback()
    assert status(pending(admin)) == "pending"


def test_a_request_expires_after_24_hours(app: Flask, client: FlaskClient, frozen: object) -> None:
    sign_in_as(client, Profile.PORTAL_TEAM)
    second = make_user(profile=Profile.PORTAL_TEAM)
    _, admin = last_administrator()
    hd = make_request()
    assert ask(client, admin, hd.reference).status_code == 302  # type: ignore[attr-defined]
    req = pending(admin)

    clock.advance(timedelta(hours=24))
    second_browser = logged_in(app, second)  # a day later: a new session
    listing = second_browser.get("/operator/second-factor-resets").get_data(as_text=True)
    assert "No reset is waiting for approval." in listing
    response = second_browser.post(f"/operator/second-factor-resets/{req.id}/approve")
    assert response.status_code == 422
    assert "has expired" in response.get_data(as_text=True)
    assert factor_count(admin) == GIVEN
    assert status(pending(admin)) == "expired"
    # A new request may be made once the old one has expired.
    assert ask(logged_in(app, second), admin, hd.reference).status_code == 302  # type: ignore[attr-defined]


def test_a_request_approved_just_before_it_expires_is_done(
    app: Flask, client: FlaskClient, frozen: object
) -> None:
    sign_in_as(client, Profile.PORTAL_TEAM)
    second = make_user(profile=Profile.PORTAL_TEAM)
    _, admin = last_administrator()
    assert ask(client, admin, make_request().reference).status_code == 302  # type: ignore[attr-defined]
    clock.advance(timedelta(hours=24) - timedelta(seconds=1))
    second_browser = logged_in(app, second)
    response = second_browser.post(f"/operator/second-factor-resets/{pending(admin).id}/approve")
    assert response.status_code == 302
    assert factor_count(admin) == 0


@pytest.mark.parametrize("who", ["requester", "other member"])
def test_either_member_may_cancel(app: Flask, client: FlaskClient, who: str) -> None:
    sign_in_as(client, Profile.PORTAL_TEAM)
    second_browser = logged_in(app, make_user(profile=Profile.PORTAL_TEAM))
    _, admin = last_administrator()
    hd = make_request()
    assert ask(client, admin, hd.reference).status_code == 302  # type: ignore[attr-defined]
    req = pending(admin)
    canceller = client if who == "requester" else second_browser
    response = canceller.post(f"/operator/second-factor-resets/{req.id}/cancel")
    assert response.status_code == 302
    assert status(pending(admin)) == "cancelled"
    assert len(audit_events(admin, kinds.SECOND_FACTOR_RESET_CANCELLED)) == 1
    # Cancelled: it can no longer be approved.
    response = second_browser.post(f"/operator/second-factor-resets/{req.id}/approve")
    assert response.status_code == 422
    assert "already approved or cancelled" in response.get_data(as_text=True)
    assert factor_count(admin) == GIVEN
    assert audit_events(admin, kinds.SECOND_FACTOR_RESET) == []


def test_a_member_cannot_ask_for_their_own_reset(client: FlaskClient) -> None:
    me = sign_in_as(client, Profile.PORTAL_TEAM)
    response = ask(client, me, make_request().reference)
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert "your own second factor" in response.get_data(as_text=True)  # type: ignore[attr-defined]


@pytest.mark.parametrize("profile", [Profile.HELPDESK, Profile.ADMINISTRATOR])
def test_only_the_portal_team_reaches_the_two_person_pages(
    client: FlaskClient, profile: Profile
) -> None:
    sign_in_as(client, profile)
    _, admin = last_administrator()
    assert client.get("/operator/second-factor-resets").status_code == 403
    assert ask(client, admin, make_request().reference).status_code == 403  # type: ignore[attr-defined]
    assert db.session.scalar(select(SecondFactorReset)) is None


def test_staff_are_reset_only_by_the_two_person_rule(app: Flask) -> None:
    """No Administrator reaches a Helpdesk user (they belong to no organisation)."""
    admin = make_user(make_org(), profile=Profile.ADMINISTRATOR)
    helpdesk = make_user(profile=Profile.HELPDESK)
    with write_transaction(db.session):
        result = resets.admin_reset(admin, helpdesk, now=clock.now(), today=clock.today())
    assert result.outcome is resets.Outcome.STAFF_USER


# --- break-glass ---------------------------------------------------------------------------------


def test_break_glass_cli(
    app: Flask, runner: FlaskCliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USER", "ops.on.call")
    monkeypatch.setenv("LOGNAME", "ops.on.call")
    secret, admin = last_administrator()
    admin_browser = logged_in(app, admin, secret)

    result = runner.invoke(args=["portal", "second-factor", "reset", admin.user_id.upper()])
    assert result.exit_code == 0, result.output
    assert "every second factor removed" in result.output
    assert "'ops.on.call'" in result.output
    assert factor_count(admin) == 0
    assert_session_ended(admin_browser, admin)
    (reset,) = audit_events(admin, kinds.SECOND_FACTOR_RESET)
    assert reset.actor_id is None
    assert reset.actor == "operator ops.on.call"
    assert "break-glass" in (reset.details or "")
    assert len(reset_mails(admin)) == 1

    unknown = runner.invoke(args=["portal", "second-factor", "reset", "nobody.here"])
    assert unknown.exit_code != 0
    assert "No user with the User ID" in unknown.output


# --- R7 ------------------------------------------------------------------------------------------


def test_a_password_reset_never_removes_a_factor(client: FlaskClient) -> None:
    """R7 + R10: the reset link sets a new password and leaves every factor in place."""
    org = make_org()
    make_user(org, profile=Profile.ADMINISTRATOR)
    admin = make_user(org, profile=Profile.ADMINISTRATOR)
    give_factor(admin)
    token = tokens.new_token()
    with write_transaction(db.session):
        tokens.issue(admin, token=token, now=clock.now(), minutes=60)
    assert client.get(f"/password-reset/{token}").status_code == 302
    new = "a brand new phrase for my account"
    response = client.post("/password-reset/new", data={"password": new, "confirm": new})
    assert response.status_code in (200, 302)
    assert audit_events(admin, kinds.PASSWORD_RESET_COMPLETED)
    assert factor_count(admin) == GIVEN
    assert audit_events(admin, kinds.SECOND_FACTOR_RESET) == []

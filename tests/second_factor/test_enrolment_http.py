"""Enrolment at /account/second-factor (docs/rules.md R10 and §9 names) over HTTP on SQLite
and PostgreSQL: the email proof before the first factor and its exception, TOTP confirmed by
``code``, recovery codes shown once, the list, removal, the check again after 5 minutes, and
the profiles that must use a factor and cannot skip it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal import ConfigError
from portal import background
from portal import clock
from portal import create_app
from portal.accounts.models import Profile
from portal.audit import kinds
from portal.extensions import db
from portal.mail_queue import QueuedMail
from portal.second_factor import service
from portal.second_factor import totp
from portal.second_factor.models import RecoveryCode
from portal.second_factor.models import SecondFactor
from tests.factories import PASSWORD
from tests.factories import login
from tests.factories import make_user
from tests.factories import refresh
from tests.helpers import audit_count
from tests.mail_server import SmtpServer
from tests.mail_server import smtp_settings
from tests.second_factor.helpers import ENROL
from tests.second_factor.helpers import add_totp
from tests.second_factor.helpers import code_step
from tests.second_factor.helpers import current_code
from tests.second_factor.helpers import mfa_codes
from tests.second_factor.helpers import password_step
from tests.second_factor.helpers import recovery_codes_on
from tests.second_factor.helpers import secret_on

MOMENT = datetime(2026, 11, 3, 10, 0, 5, tzinfo=UTC)
STAFF = "administrator,helpdesk,portal_team"
EMAIL_CODE = re.compile(r"^(\d{8})$", re.M)
NEW_PASSWORD = "a brand new phrase for my account"


@pytest.fixture
def settings(
    request: pytest.FixtureRequest, settings: dict[str, Any], smtp_server: SmtpServer, tmp_path: Any
) -> dict[str, Any]:
    return smtp_settings(
        request, settings, smtp_server, tmp_path / "outbox", "https://portal.example.test"
    )


@pytest.fixture(autouse=True)
def _fixed_clock(app: Flask) -> Iterator[None]:
    with clock.frozen(MOMENT):
        yield
    background.shutdown(app)


def settle(app: Flask) -> None:
    background.wait_idle(app)


def emailed_code(smtp: SmtpServer, count: int) -> str:
    messages = smtp.wait_for(count)
    found = EMAIL_CODE.search(messages[count - 1].get_content())
    assert found is not None, messages[count - 1].get_content()
    return found.group(1)


def enrol_totp(client: FlaskClient, page: Any) -> tuple[str, Any]:
    secret = secret_on(page)
    response = client.post(ENROL, data={"code": current_code(secret), "name": "My phone"})
    return secret, response


@pytest.mark.config(PORTAL_MFA_REQUIRED=STAFF)
def test_first_factor_needs_the_emailed_code(
    app: Flask, client: FlaskClient, smtp_server: SmtpServer
) -> None:
    admin = make_user(profile=Profile.ADMINISTRATOR)
    login(client, admin.user_id, door="console")
    # Required, no factor: every page sends it to the enrolment page first.
    for path in ("/console/", "/console/users", "/portal/", "/account/password"):
        response = client.get(path)
        if path == "/account/password":
            assert response.status_code == 200  # changing the password stays open
            continue
        assert response.status_code == 302, path
        assert response.headers["Location"].endswith(ENROL), path
    page = client.get(ENROL)
    settle(app)
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'name="email_code"' in text
    assert 'id="totp-secret"' not in text
    assert mfa_codes(page) == ["MFA-04"]
    code = emailed_code(smtp_server, 1)
    assert smtp_server.messages[0]["To"] == admin.email
    # Stored sealed in the queue, never in clear.
    row = db.session.scalar(select(QueuedMail).order_by(QueuedMail.id.desc()))
    assert row is not None
    assert code not in row.body
    # A TOTP code before the proof is refused.
    refused = client.post(ENROL, data={"code": "123456"})
    assert refused.status_code == 422
    wrong = client.post(ENROL, data={"email_code": "00000000" if code != "00000000" else "1"})
    assert wrong.status_code == 422
    assert mfa_codes(wrong) == ["MFA-05"]
    proven = client.post(ENROL, data={"email_code": code})
    assert proven.status_code == 200
    secret, added = enrol_totp(client, proven)
    assert added.status_code == 200
    shown = recovery_codes_on(added)
    assert len(shown) == 10
    assert len(set(shown)) == 10
    assert audit_count(admin, kinds.SECOND_FACTOR_ADDED) == 1
    assert audit_count(admin, kinds.EMAIL_PROOF_SENT) == 1
    # Stored hashed only; the secret sealed.
    hashes = db.session.scalars(select(RecoveryCode.code_hash)).all()
    assert len(hashes) == 10
    assert not set(shown) & set(hashes)
    factor = db.session.scalar(select(SecondFactor))
    assert factor is not None
    assert factor.name == "My phone"
    assert secret not in (factor.totp_secret_sealed or "")
    # Shown once: the page does not show them again.
    assert recovery_codes_on(client.get(ENROL)) == []
    assert client.get("/console/").status_code == 200


@pytest.mark.config(PORTAL_MFA_REQUIRED=STAFF)
def test_the_emailed_code_works_once(
    app: Flask, client: FlaskClient, smtp_server: SmtpServer
) -> None:
    admin = make_user(profile=Profile.ADMINISTRATOR)
    login(client, admin.user_id, door="console")
    client.get(ENROL)
    settle(app)
    code = emailed_code(smtp_server, 1)
    assert client.post(ENROL, data={"email_code": code}).status_code == 200
    other = app.test_client()
    login(other, admin.user_id, door="console")
    assert client.get(ENROL).status_code == 200
    assert other.post(ENROL, data={"email_code": code}).status_code == 422


@pytest.mark.config(PORTAL_MFA_REQUIRED=STAFF)
def test_a_one_time_password_login_needs_no_email_proof(
    app: Flask, client: FlaskClient, smtp_server: SmtpServer
) -> None:
    admin = make_user(profile=Profile.ADMINISTRATOR, one_time=True)
    response = login(client, admin.user_id, door="console")
    assert response.headers["Location"].endswith("/account/password")
    assert client.get("/console/").headers["Location"].endswith("/account/password")
    changed = client.post(
        "/account/password",
        data={"current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert changed.status_code == 302
    assert client.get("/console/").headers["Location"].endswith(ENROL)
    page = client.get(ENROL)
    settle(app)
    assert 'name="email_code"' not in page.get_data(as_text=True)
    _, added = enrol_totp(client, page)
    assert len(recovery_codes_on(added)) == 10
    assert smtp_server.messages == []


def test_not_required_profiles_may_opt_in_and_remove(app: Flask, client: FlaskClient) -> None:
    user = make_user(one_time=True)
    login(client, user.user_id)
    client.post(
        "/account/password",
        data={"current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert client.get("/portal/").status_code == 200  # not required: no redirect
    page = client.get(ENROL)
    _, added = enrol_totp(client, page)
    assert added.status_code == 200
    factor = db.session.scalar(select(SecondFactor))
    assert factor is not None
    removed = client.post(f"{ENROL}/{factor.id}/remove")
    assert removed.status_code == 302
    db.session.rollback()
    assert not service.has_factor(user.id)
    assert db.session.scalar(select(RecoveryCode)) is None  # they recover nothing now
    assert audit_count(user, kinds.SECOND_FACTOR_REMOVED) == 1


@pytest.mark.config(PORTAL_MFA_REQUIRED=STAFF)
def test_the_last_factor_of_a_required_profile_cannot_be_removed(
    app: Flask, client: FlaskClient
) -> None:
    admin = make_user(profile=Profile.ADMINISTRATOR)
    secret, _ = add_totp(admin)
    password_step(client, admin, door="console")
    code_step(client, current_code(secret))
    factor = db.session.scalar(select(SecondFactor))
    assert factor is not None
    response = client.post(f"{ENROL}/{factor.id}/remove")
    assert response.status_code == 302
    page = client.get(ENROL)
    assert "only second factor" in page.get_data(as_text=True)
    db.session.rollback()
    assert service.has_factor(admin.id)


def test_adding_a_factor_after_5_minutes_asks_for_a_current_one(
    app: Flask, client: FlaskClient
) -> None:
    user = make_user()
    secret, _ = add_totp(user)
    password_step(client, user)
    code_step(client, current_code(secret))
    assert 'id="totp-secret"' in client.get(ENROL).get_data(as_text=True)
    clock.advance(timedelta(minutes=5, seconds=31))
    stale = client.get(ENROL).get_data(as_text=True)
    assert 'id="totp-secret"' not in stale
    assert 'name="current_code"' in stale
    factor = db.session.scalar(select(SecondFactor))
    assert factor is not None
    refused = client.post(f"{ENROL}/{factor.id}/remove")
    assert mfa_codes(client.get(refused.headers["Location"])) == ["MFA-06"]
    assert client.post(ENROL, data={"code": "123456"}).status_code == 422
    wrong = client.post(ENROL, data={"current_code": "000000"})
    assert wrong.status_code == 302
    assert refresh(user).failed_codes == 1
    ok = client.post(ENROL, data={"current_code": current_code(secret)})
    assert ok.status_code == 200
    assert refresh(user).failed_codes == 0
    page = client.get(ENROL)
    new_secret = secret_on(page)
    assert new_secret != secret
    added = client.post(ENROL, data={"code": totp.code_at(new_secret, clock.now())})
    assert added.status_code == 200
    assert recovery_codes_on(added) == []  # the set it has keeps working
    db.session.rollback()
    assert len(service.factors(user.id)) == 2


def test_a_wrong_confirmation_code_adds_nothing(app: Flask, client: FlaskClient) -> None:
    user = make_user(one_time=True)
    login(client, user.user_id)
    client.post(
        "/account/password",
        data={"current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    page = client.get(ENROL)
    secret = secret_on(page)
    wrong = client.post(ENROL, data={"code": "000000" if current_code(secret) != "000000" else "1"})
    assert wrong.status_code == 422
    assert mfa_codes(wrong) == ["MFA-01"]
    assert secret_on(wrong) == secret  # the same secret until it is confirmed
    db.session.rollback()
    assert not service.has_factor(user.id)


def test_the_enrolment_page_needs_a_login(client: FlaskClient) -> None:
    response = client.get(ENROL)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


@pytest.mark.config(PORTAL_MFA_REQUIRED=STAFF)
def test_claims_handlers_are_not_required_by_default_staff_list(
    app: Flask, client: FlaskClient
) -> None:
    handler = make_user()
    login(client, handler.user_id)
    assert client.get("/portal/").status_code == 200


def test_the_setting_refuses_unknown_profiles(settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="PORTAL_MFA_REQUIRED"):
        create_app({**settings, "PORTAL_MFA_REQUIRED": "administrator,boss"})


def test_the_setting_defaults(settings: dict[str, Any]) -> None:
    assert create_app(settings).config["PORTAL_MFA_REQUIRED"] == ""
    from portal.second_factor import policy

    assert policy.resolve({"PORTAL_ENV": "production"}) == STAFF
    assert policy.resolve({"PORTAL_ENV": "development"}) == ""
    assert policy.resolve({"PORTAL_ENV": "production", "PORTAL_MFA_REQUIRED": " Helpdesk "}) == (
        "helpdesk"
    )


@pytest.mark.config(PORTAL_MFA_REQUIRED="administrator")
def test_an_htmx_request_is_sent_to_enrolment_as_a_whole_page(
    app: Flask, client: FlaskClient
) -> None:
    admin = make_user(profile=Profile.ADMINISTRATOR, one_time=True)
    login(client, admin.user_id, door="console")
    client.post(
        "/account/password",
        data={"current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    response = client.get("/console/users", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == ENROL

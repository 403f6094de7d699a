"""Text that grows when case-folded is refused with a message by the field, never a 500.

Each ``*_key`` column holds the case-folded copy of a value (for uniqueness and look-up), and
case-folding can lengthen text: "ΐ" is one character (two octets) and three once folded, "ß"
is "ss".  A value that fitted its own column overflowed its key's, and PostgreSQL refused the
row (a 500; SQLite does not enforce lengths, so it let it through).  The length checks now run
on the stored form too.  Runs on SQLite and, when PORTAL_TEST_DATABASE_URL is set, PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlalchemy import select

from portal import background
from portal import clock
from portal.accounts.models import Organisation
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.extensions import db
from portal.helpdesk.models import HelpdeskRequest
from portal.newsletter.models import Subscriber
from tests.factories import login
from tests.factories import make_org
from tests.factories import make_user
from tests.helpers import sign_in_as
from tests.mail_server import SmtpServer
from tests.mail_server import smtp_settings

#: 67 × "ΐ": 67 characters, 201 once case-folded (a 200-character key).
LONG_NAME = "ΐ" * 67
#: Within the syntax check's 254 octets and 254 characters; its key is 3 × 100 + 11 = 311.
LONG_EMAIL = "ΐ" * 100 + "@ab.example"


@pytest.fixture
def settings(
    request: pytest.FixtureRequest,
    settings: dict[str, Any],
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> dict[str, Any]:
    return smtp_settings(request, settings, smtp_server, tmp_path / "outbox", "https://x.test")


def count(model: type) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(model)) or 0


def console(app: Flask) -> tuple[FlaskClient, Organisation]:
    org = make_org()
    client = app.test_client()
    admin = make_user(org, profile=Profile.ADMINISTRATOR)
    assert login(client, admin.user_id, door="console").status_code == 302
    return client, org


def test_the_folded_email_is_longer_than_its_column() -> None:
    assert len(LONG_EMAIL) <= 254
    assert len(LONG_EMAIL.encode()) <= 254
    assert len(LONG_EMAIL.casefold()) > 254
    assert len(LONG_NAME) <= 200 < len(LONG_NAME.casefold())


CONTACT = {
    "full_name": "Ada Lovelace",
    "email": "ada@example.com",
    "organisation": "Acme",
    "role": "administrator",
    "console": "portal",
    "environment": "live",
    "error_message": "Your User ID is locked",
}
RESEND = {
    "environment": "live",
    "organisation": "Acme",
    "full_name": "Ada Lovelace",
    "email": "ada@example.com",
}


@pytest.mark.parametrize(
    ("path", "data"),
    [("/helpdesk/contact", CONTACT), ("/helpdesk/resend-admin-user-id", RESEND)],
)
def test_helpdesk_forms_refuse_an_email_longer_once_folded(
    app: Flask, client: FlaskClient, path: str, data: dict[str, str]
) -> None:
    response = client.post(path, data={**data, "email": LONG_EMAIL})
    background.wait_idle(app)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "The email address must be 254 characters or fewer" in body
    assert 'id="email-error"' in body
    assert count(HelpdeskRequest) == 0


def test_newsletter_refuses_an_email_longer_once_folded(client: FlaskClient) -> None:
    response = client.post("/newsletter", data={"email": LONG_EMAIL})
    assert response.status_code == 400  # the newsletter form's answer to a bad address
    assert "254 characters or fewer" in response.get_data(as_text=True)
    assert count(Subscriber) == 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("full_name", LONG_NAME, "The full name must be 200 characters or fewer"),
        ("email", LONG_EMAIL, "The email address must be 254 characters or fewer"),
    ],
)
def test_console_create_refuses_text_longer_once_folded(
    app: Flask, field: str, value: str, message: str
) -> None:
    client, _ = console(app)
    before = count(User)
    data = {
        "user_id": "new.user",
        "full_name": "New User",
        "email": "new@example.com",
        "profile": "claims_handler",
        "expires_on": (clock.today() + timedelta(days=30)).isoformat(),
        field: value,
    }
    response = client.post("/console/users/new", data=data)
    assert response.status_code in (200, 422)
    body = response.get_data(as_text=True)
    assert message in body
    assert f'id="{field}-error"' in body
    assert count(User) == before


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("full_name", LONG_NAME, "The full name must be 200 characters or fewer"),
        ("email", LONG_EMAIL, "The email address must be 254 characters or fewer"),
    ],
)
def test_console_edit_refuses_text_longer_once_folded(
    app: Flask, field: str, value: str, message: str
) -> None:
    client, org = console(app)
    handler = make_user(org)
    data = {"full_name": "Handler", "email": "handler@example.com", "profile": "claims_handler"}
    response = client.post(f"/console/users/{handler.id}", data={**data, field: value})
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    db.session.rollback()
    db.session.expire_all()
    assert getattr(db.session.get(User, handler.id), field) != value


def test_operator_create_organisation_refuses_a_name_longer_once_folded(app: Flask) -> None:
    client = app.test_client()
    sign_in_as(client, Profile.PORTAL_TEAM)
    before = count(Organisation)
    response = client.post("/operator/organisations/new", data={"name": "ΐ" * 100})
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "name must be 200 characters or fewer" in body
    assert 'id="name-error"' in body
    assert count(Organisation) == before


def test_operator_first_administrator_refuses_an_email_longer_once_folded(app: Flask) -> None:
    org = make_org()
    client = app.test_client()
    sign_in_as(client, Profile.PORTAL_TEAM)
    before = count(User)
    response = client.post(
        f"/operator/organisations/{org.id}/administrators/new",
        data={
            "user_id": "first.admin",
            "full_name": "First Admin",
            "email": LONG_EMAIL,
            "expires_on": (clock.today() + timedelta(days=30)).isoformat(),
        },
    )
    assert response.status_code == 422
    assert "The email address must be 254 characters or fewer" in response.get_data(as_text=True)
    assert count(User) == before


@pytest.mark.parametrize("door", ["portal", "console"])
def test_login_and_reset_take_any_user_id(app: Flask, client: FlaskClient, door: str) -> None:
    """Look-ups only (nothing typed is stored): a long or folded User ID, or NUL, is the
    generic failure, and the reset request's look-up after the response does not fail."""
    for user_id in ("ΐ" * 300, "a\x00b", "ß" * 64):
        response = client.post(f"/{door}/login", data={"user_id": user_id, "password": "x" * 12})
        assert response.status_code == 200
        reset = client.post("/password-reset", data={"user_id": user_id, "email": LONG_EMAIL})
        assert reset.status_code == 200
    background.wait_idle(app)

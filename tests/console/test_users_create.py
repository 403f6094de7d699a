"""Creating a user in the Console over HTTP (docs/rules.md §2 R9, §4; docs/security.md AC-02):
the one-time password shown once, every problem listed at once, control characters, and fields
the form does not offer.

Runs on SQLite and, when PORTAL_TEST_DATABASE_URL is set, on PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal import clock
from portal.accounts import service
from portal.extensions import db
from tests.console.users_helpers import log_in_admin
from tests.console.users_helpers import one_time_password
from tests.console.users_helpers import user_count
from tests.factories import login
from tests.factories import make_org
from tests.factories import make_user
from tests.helpers import audit_events

# --- creating a user -----------------------------------------------------------------------


def test_create_user_shows_the_one_time_password_once(app: Flask, client: FlaskClient) -> None:
    org = make_org()
    admin = log_in_admin(client, org)
    form = client.get("/console/users/new")
    assert form.status_code == 200
    default = (clock.today() + timedelta(days=app.config["PORTAL_DEFAULT_EXPIRY_DAYS"])).isoformat()
    assert f'value="{default}"' in form.get_data(as_text=True)

    expiry = clock.today() + timedelta(days=60)
    response = client.post(
        "/console/users/new",
        data={
            "user_id": "New.Person",
            "full_name": "New Person",
            "email": "new.person@example.com",
            "profile": "claims_handler",
            "expires_on": expiry.isoformat(),
        },
    )
    assert response.status_code == 200
    password = one_time_password(response)
    assert len(password) >= 16

    db.session.rollback()
    user = service.find_user("new.person")
    assert user is not None
    assert user.user_id == "New.Person"  # shown as entered
    assert user.organisation_id == org.id
    assert user.profile == "claims_handler"
    assert user.must_change_password
    assert user.enabled
    assert user.active
    assert user.expires_on == expiry
    created = audit_events(user, "user_created")
    assert [e.actor for e in created] == [admin.user_id]

    # Shown once: nowhere else.
    assert password not in client.get(f"/console/users/{user.id}").get_data(as_text=True)
    assert password not in client.get("/console/users").get_data(as_text=True)

    # It works, and forces a change at first login.
    theirs = app.test_client()
    first = login(theirs, "new.person", password)
    assert first.status_code == 302
    assert first.headers["Location"] == "/account/password"
    assert theirs.get("/portal/").headers["Location"] == "/account/password"


def test_create_user_lists_every_problem_at_once_and_stores_nothing(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    make_user(org, user_id="Taken.ID")
    before = user_count()
    created_before = len(audit_events(kind="user_created"))

    response = client.post(
        "/console/users/new",
        data={
            "user_id": "taken.id",
            "full_name": "Someone",
            "email": "not-an-email",
            "profile": "claims_handler",
            "expires_on": (clock.today() - timedelta(days=1)).isoformat(),
        },
    )
    assert response.status_code in (200, 422)
    body = response.get_data(as_text=True)
    assert "There is a problem" in body
    assert "already taken" in body
    assert "Enter an email address in the correct format" in body
    assert "The expiry date must be after today" in body
    assert 'id="user_id-error"' in body
    assert 'id="email-error"' in body
    assert 'id="expires_on-error"' in body
    assert 'value="taken.id"' in body  # what was typed is kept
    assert "<code>" not in body
    assert user_count() == before
    assert len(audit_events(kind="user_created")) == created_before


@pytest.mark.parametrize("field", ["user_id", "full_name", "email"])
def test_create_user_refuses_control_characters_without_a_500(
    client: FlaskClient, field: str
) -> None:
    """PostgreSQL refuses NUL in text: the form must refuse it first, by the field."""
    org = make_org()
    log_in_admin(client, org)
    before = user_count()
    data = {
        "user_id": "new.person",
        "full_name": "New Person",
        "email": "new@example.com",
        "profile": "claims_handler",
        "expires_on": (clock.today() + timedelta(days=30)).isoformat(),
    }
    data[field] = data[field][:3] + "\x00" + data[field][3:]
    response = client.post("/console/users/new", data=data)
    assert response.status_code in (200, 422)
    assert f'id="{field}-error"' in response.get_data(as_text=True)
    assert user_count() == before


def test_create_user_ignores_fields_it_does_not_offer(client: FlaskClient) -> None:
    """docs/security.md AC-02: no mass assignment of organisation, flags or profiles it does not
    offer."""
    org, other = make_org(), make_org()
    log_in_admin(client, org)
    base = {
        "user_id": "plain.user",
        "full_name": "Plain User",
        "email": "plain@example.com",
        "expires_on": (clock.today() + timedelta(days=30)).isoformat(),
    }
    refused = client.post("/console/users/new", data={**base, "profile": "portal_team"})
    assert "<code>" not in refused.get_data(as_text=True)
    assert service.find_user("plain.user") is None

    response = client.post(
        "/console/users/new",
        data={
            **base,
            "profile": "claims_handler",
            "organisation_id": str(other.id),
            "enabled": "false",
            "active": "false",
            "must_change_password": "false",
            "failed_attempts": "4",
        },
    )
    assert response.status_code == 200
    db.session.rollback()
    user = service.find_user("plain.user")
    assert user is not None
    assert user.organisation_id == org.id
    assert user.enabled
    assert user.active
    assert user.must_change_password
    assert user.failed_attempts == 0

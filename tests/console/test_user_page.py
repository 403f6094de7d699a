"""A user's page in the Console over HTTP (docs/rules.md §2 R4, R9; docs/security.md AC-04,
SE-08): details, expiry (inline and without JavaScript), the one-time password of a reset, and
signing out everywhere.

Runs on SQLite and, when PORTAL_TEST_DATABASE_URL is set, on PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient

from portal import clock
from portal.accounts import rules
from portal.accounts.models import Profile
from tests.console.users_helpers import flags
from tests.console.users_helpers import log_in_admin
from tests.console.users_helpers import one_time_password
from tests.console.users_helpers import set_expiry
from tests.factories import PASSWORD
from tests.factories import apply
from tests.factories import lock_out
from tests.factories import login
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import refresh
from tests.helpers import audit_events

# --- a user's page -------------------------------------------------------------------------


def test_user_page_details_are_saved_and_audited(client: FlaskClient) -> None:
    org = make_org()
    admin = log_in_admin(client, org)
    handler = make_user(org)
    page = client.get(f"/console/users/{handler.id}")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert f'<tr id="user-{handler.id}"' in body
    assert '<form id="expiry"' in body
    assert "Audit trail" in body

    response = client.post(
        f"/console/users/{handler.id}",
        data={
            "full_name": "Renamed Person",
            "email": "renamed@example.com",
            "profile": "administrator",
            "enabled": "false",  # not a field of this form: ignored
            "organisation_id": "999",
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"/console/users/{handler.id}"
    assert "Details saved." in client.get(f"/console/users/{handler.id}").get_data(as_text=True)
    fresh = refresh(handler)
    assert fresh.full_name == "Renamed Person"
    assert fresh.email == "renamed@example.com"
    assert fresh.profile == "administrator"
    assert fresh.enabled
    assert fresh.organisation_id == org.id
    changed = audit_events(handler, "details_changed")
    assert len(changed) == 1
    assert changed[0].actor == admin.user_id
    assert "Renamed Person" in (changed[0].details or "")
    assert "administrator" in (changed[0].details or "")


def test_user_page_bad_email_is_refused(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    handler = make_user(org)
    response = client.post(
        f"/console/users/{handler.id}",
        data={"full_name": "X", "email": "nope", "profile": "claims_handler"},
    )
    assert response.status_code == 422
    assert "Enter an email address in the correct format" in response.get_data(as_text=True)
    assert refresh(handler).email == handler.email
    assert audit_events(handler, "details_changed") == []


def test_user_page_demoting_oneself_is_refused_with_a_message(client: FlaskClient) -> None:
    """Demoting the last Administrator: over HTTP the acting Administrator is always one with
    access, so the last one can only be itself."""
    org = make_org()
    admin = log_in_admin(client, org)
    response = client.post(
        f"/console/users/{admin.id}",
        data={"full_name": admin.full_name, "email": admin.email, "profile": "claims_handler"},
    )
    assert response.status_code == 422
    assert "You cannot remove your own Administrator profile" in response.get_data(as_text=True)
    assert refresh(admin).profile == "administrator"
    assert audit_events(admin, "details_changed") == []


def test_user_page_demoting_another_administrator_is_allowed(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    other = make_user(org, profile=Profile.ADMINISTRATOR)
    response = client.post(
        f"/console/users/{other.id}",
        data={"full_name": other.full_name, "email": other.email, "profile": "claims_handler"},
    )
    assert response.status_code == 302
    assert refresh(other).profile == "claims_handler"


def test_expiry_inline_with_htmx(client: FlaskClient) -> None:
    org = make_org()
    admin = log_in_admin(client, org)
    handler = make_user(org)
    old = refresh(handler).expires_on
    new_date = clock.today() + timedelta(days=400)

    response = set_expiry(client, handler, new_date)
    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == "users-changed"
    body = response.get_data(as_text=True).strip()
    # The whole Access section again (the row shows the new date too), and the audit trail out
    # of band with the new event under the audit log's label (issue 12 point 5).
    assert body.startswith('<section id="access"')
    assert "<html" not in body
    assert f'value="{new_date.isoformat()}"' in body
    shown = f"{new_date.day} {new_date:%b %Y}"
    assert f"Expiry date saved: access ends on {shown}" in body
    assert body.count(shown) >= 3  # the row, the status line, the announcement
    assert '<section id="trail" aria-labelledby="trail-title" hx-swap-oob="true">' in body
    assert "Expiry date changed" in body
    assert "Nothing recorded yet" not in body
    assert refresh(handler).expires_on == new_date
    changed = audit_events(handler, "expiry_changed")
    assert len(changed) == 1
    assert changed[0].actor == admin.user_id
    assert changed[0].details == f"{old} -> {new_date}"


def test_expiry_in_the_past_is_refused_with_422(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    handler = make_user(org)
    old = refresh(handler).expires_on

    response = set_expiry(client, handler, clock.today() - timedelta(days=1))
    assert response.status_code == 422
    assert "HX-Trigger" not in response.headers
    body = response.get_data(as_text=True)
    assert body.strip().startswith('<section id="access"')
    assert "The expiry date must be after today." in body
    # the refusal is in the trail at once, with the audit log's labels, never a raw code
    assert "Expiry date change refused" in body
    assert "date in the past" in body
    assert "refused_past_date" not in body
    assert 'aria-invalid="true"' in body
    assert refresh(handler).expires_on == old
    assert audit_events(handler, "expiry_changed") == []
    assert [e.reason for e in audit_events(handler, "expiry_refused")] == ["refused_past_date"]

    garbled = set_expiry(client, handler, "31/02/2027")
    assert garbled.status_code == 422
    assert refresh(handler).expires_on == old


def test_expiry_without_javascript_redirects_to_the_users_page(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    handler = make_user(org)
    new_date = clock.today() + timedelta(days=10)
    response = set_expiry(client, handler, new_date, hx=False)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/console/users/{handler.id}"
    assert "Expiry date saved" in client.get(f"/console/users/{handler.id}").get_data(as_text=True)
    assert refresh(handler).expires_on == new_date


def test_reset_password_gives_a_one_time_password(app: Flask, client: FlaskClient) -> None:
    org = make_org()
    admin = log_in_admin(client, org)
    handler = make_user(org)
    theirs = app.test_client()
    assert login(theirs, handler.user_id).status_code == 302
    for _ in range(2):  # two wrong passwords since
        fresh = refresh(handler)
        apply(
            fresh,
            rules.login_attempt(
                fresh.to_state(), password_ok=False, now=clock.now(), today=clock.today()
            ),
        )
    assert refresh(handler).failed_attempts == 2

    response = client.post(f"/console/users/{handler.id}/password-reset", follow_redirects=True)
    assert response.status_code == 200
    password = one_time_password(response)
    fresh = refresh(handler)
    assert fresh.failed_attempts == 0
    assert fresh.must_change_password
    assert [e.actor for e in audit_events(handler, "password_reset_by_admin")] == [admin.user_id]

    # Other sessions ended (R8).
    ended = theirs.get("/portal/")
    assert ended.status_code == 302
    assert ended.headers["Location"].startswith("/portal/login")
    # The old password no longer works; the new one does, and forces a change.
    assert login(theirs, handler.user_id, PASSWORD).status_code == 200
    first = login(theirs, handler.user_id, password)
    assert first.status_code == 302
    assert first.headers["Location"] == "/account/password"
    # The Administrator's own session is untouched.
    assert client.get("/console/users").status_code == 200


def test_reset_password_of_a_locked_out_user_says_it_is_still_disabled(
    client: FlaskClient,
) -> None:
    org = make_org()
    log_in_admin(client, org)
    handler = lock_out(make_user(org))
    response = client.post(f"/console/users/{handler.id}/password-reset", follow_redirects=True)
    assert response.status_code == 200
    assert "is still disabled: tick Enabled" in response.get_data(as_text=True)
    assert refresh(handler).failed_attempts == 0


def test_sign_out_everywhere_ends_the_users_sessions(app: Flask, client: FlaskClient) -> None:
    org = make_org()
    admin = log_in_admin(client, org)
    handler = make_user(org)
    theirs = app.test_client()
    assert login(theirs, handler.user_id).status_code == 302
    assert theirs.get("/portal/").status_code == 200

    response = client.post(f"/console/users/{handler.id}/sign-out")
    assert response.status_code == 303  # post/redirect/get: a refresh sends nothing again
    assert response.headers["Location"] == f"/console/users/{handler.id}"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Every session of this user has ended." in page

    ended = theirs.get("/portal/")
    assert ended.status_code == 302
    assert ended.headers["Location"].startswith("/portal/login")
    assert [e.actor for e in audit_events(handler, "sessions_ended")] == [admin.user_id]
    assert flags(handler) == (True, True, None)  # the account itself is untouched
    assert login(theirs, handler.user_id).status_code == 302

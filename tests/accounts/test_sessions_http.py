"""Sessions follow the flags (R8, docs/security.md section 5) and one-time passwords (D-3)."""

from __future__ import annotations

from datetime import timedelta
from http.cookies import SimpleCookie

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal import clock
from portal import create_app
from portal.accounts import rules
from portal.accounts.models import Profile
from portal.extensions import db
from tests.factories import PASSWORD
from tests.factories import apply
from tests.factories import lock_out
from tests.factories import login
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import message_codes
from tests.factories import refresh
from tests.factories import remove_access

NEW_PASSWORD = "a brand new phrase for my account"
HX = {"HX-Request": "true"}


def test_removing_access_ends_the_session_at_the_next_request(client: FlaskClient) -> None:
    user = make_user()
    login(client, user.user_id)
    assert client.get("/portal/").status_code == 200
    remove_access(user)
    hx = client.get("/portal/", headers=HX)
    assert hx.status_code == 200
    assert hx.headers["HX-Redirect"].startswith("/portal/login")
    response = client.get("/portal/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/portal/login")


@pytest.mark.parametrize("how", ["lockout", "expiry", "password-changed-elsewhere"])
def test_other_changes_end_the_session_too(client: FlaskClient, app: Flask, how: str) -> None:
    user = make_user()
    login(client, user.user_id)
    assert client.get("/portal/").status_code == 200
    if how == "lockout":
        lock_out(user)
    elif how == "expiry":
        user = refresh(user)
        clock.advance(timedelta(days=366))
    else:
        user = refresh(user)
        user.set_password(NEW_PASSWORD)
        db.session.commit()
    response = client.get("/portal/", headers=HX)
    assert "HX-Redirect" in response.headers


def test_session_ended_message_is_shown_at_the_login_page(client: FlaskClient) -> None:
    user = make_user()
    login(client, user.user_id)
    remove_access(user)
    response = client.get("/portal/", follow_redirects=True)
    assert message_codes(response) == ["LOGIN-10"]


def test_console_session_goes_back_to_the_console_login(client: FlaskClient) -> None:
    org = make_org()
    make_user(org, profile=Profile.ADMINISTRATOR)
    admin = make_user(org, profile=Profile.ADMINISTRATOR)
    login(client, admin.user_id, door="console")
    remove_access(admin)
    assert client.get("/console/").headers["Location"].startswith("/console/login")


def test_logout_is_a_post_and_a_replayed_cookie_is_worthless(client: FlaskClient) -> None:
    user = make_user()
    login(client, user.user_id)
    captured = client.get_cookie("portal-session")
    assert captured is not None
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 302
    assert client.get("/portal/").status_code == 302
    client.set_cookie(captured.key, captured.value)  # replay the logged-in cookie
    assert client.get("/portal/").status_code == 302


def test_a_logout_ends_the_users_other_sessions(app: Flask) -> None:
    user = make_user()
    first, second = app.test_client(), app.test_client()
    login(first, user.user_id)
    login(second, user.user_id)
    # Both logins worked, so the last line below tests the logout, not a failed second login.
    assert first.get("/portal/").status_code == 200
    assert second.get("/portal/").status_code == 200
    first.post("/logout")
    assert second.get("/portal/").status_code == 302


def test_session_is_renewed_at_login(client: FlaskClient) -> None:
    user = make_user()
    client.get("/portal/login")
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    login(client, user.user_id)
    with client.session_transaction() as session:
        assert "planted" not in session
        assert "_user_id" in session


def test_idle_timeout(client: FlaskClient) -> None:
    user = make_user()
    with clock.frozen(clock.now()):
        login(client, user.user_id)
        clock.advance(timedelta(minutes=29))
        assert client.get("/portal/").status_code == 200
        clock.advance(timedelta(minutes=29))  # 29 minutes since the last request: still fine
        assert client.get("/portal/").status_code == 200
        clock.advance(timedelta(minutes=31))
        assert client.get("/portal/").status_code == 302


def test_a_page_read_rewrites_the_session_cookie_at_most_once_a_minute(
    client: FlaskClient,
) -> None:
    """The idle clock (SEEN_AT) moves at most once a minute, so most GETs send no Set-Cookie
    (issue 12 point 6); it can only make the idle timeout come sooner (SE-04)."""
    user = make_user()
    with clock.frozen(clock.now()):
        login(client, user.user_id)
        client.get("/portal/")  # the first page may store its CSRF token
        clock.advance(timedelta(seconds=30))
        assert "Set-Cookie" not in client.get("/portal/").headers
        clock.advance(timedelta(seconds=31))  # a minute since SEEN_AT was written
        assert "Set-Cookie" in client.get("/portal/").headers
        assert "Set-Cookie" not in client.get("/portal/").headers
        # 29 minutes after the last write, 29.5 after login's: still in.
        clock.advance(timedelta(minutes=29))
        assert client.get("/portal/").status_code == 200


def test_absolute_timeout(client: FlaskClient) -> None:
    user = make_user()
    with clock.frozen(clock.now()):
        login(client, user.user_id)
        for _ in range(12 * 3):  # a request every 20 minutes: exactly 12 hours after login
            clock.advance(timedelta(minutes=20))
            assert client.get("/portal/").status_code == 200
        clock.advance(timedelta(minutes=20))  # now beyond 12 hours, though never idle
        assert client.get("/portal/").status_code == 302


@pytest.mark.config(PORTAL_SESSION_IDLE_MINUTES=5)
def test_idle_timeout_is_configurable(client: FlaskClient) -> None:
    user = make_user()
    with clock.frozen(clock.now()):
        login(client, user.user_id)
        clock.advance(timedelta(minutes=6))
        assert client.get("/portal/").status_code == 302


def test_production_cookie_attributes(database_url: str) -> None:
    from tests.conftest import base_settings

    settings = {
        **base_settings(database_url),
        "TESTING": False,
        "PORTAL_ENV": "production",
        "PORTAL_BASE_URL": "https://portal.example",  # production refuses to start without
    }
    app = create_app(settings)
    with app.app_context():
        user = make_user()
        client = app.test_client()
        response = client.post(
            "/portal/login",
            data={"user_id": user.user_id, "password": PASSWORD},
            base_url="https://portal.example",
        )
        assert response.status_code == 302
        raw = response.headers["Set-Cookie"]
        cookie = SimpleCookie(raw)
        morsel = cookie["__Host-portal-session"]
        assert morsel["secure"]
        assert morsel["httponly"]
        assert morsel["samesite"] == "Lax"
        assert morsel["path"] == "/"
        assert not morsel["domain"]
        assert "Expires" not in raw  # a browser-session cookie; no remember-me cookie either
        assert "remember_token" not in raw
        db.session.remove()
        db.engine.dispose()


# --- one-time passwords and changing one's password --------------------------------------


def test_one_time_password_forces_a_change(client: FlaskClient) -> None:
    user = make_user(one_time=True)
    response = login(client, user.user_id)
    assert response.headers["Location"] == "/account/password"
    assert client.get("/portal/").headers["Location"] == "/account/password"
    page = client.get("/account/password").get_data(as_text=True)
    assert "LOGIN-14" in page
    assert 'name="current_password"' not in page  # proven by this very login
    assert "notice-error" not in page  # calm: the expected next step, not an error
    response = client.post(
        "/account/password",
        data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert client.get("/portal/").status_code == 200  # this session continues
    user = refresh(user)
    assert not user.must_change_password
    client.post("/logout")
    assert login(client, user.user_id, NEW_PASSWORD).headers["Location"] == "/portal/"


@pytest.mark.parametrize(
    ("password", "confirm", "message"),
    [
        ("short one", "short one", "at least 12 characters"),
        ("password1234", "password1234", "too common"),
        ("x" * 129, "x" * 129, "128 characters or fewer"),
        ("abcabcabcabcabc", "abcabcabcabcabc", "harder to guess"),
        (NEW_PASSWORD, "something else entirely", "do not match"),
    ],
)
def test_password_policy_on_change(
    client: FlaskClient, password: str, confirm: str, message: str
) -> None:
    user = make_user()
    login(client, user.user_id)
    response = client.post(
        "/account/password",
        data={"current_password": PASSWORD, "password": password, "confirm": confirm},
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert message in page
    assert "There is a problem" in page
    assert refresh(user).password_changed_at == user.password_changed_at  # unchanged


def test_password_may_not_contain_the_user_id(client: FlaskClient) -> None:
    user = make_user(user_id="jane.doe")
    login(client, user.user_id)
    page = client.post(
        "/account/password",
        data={
            "current_password": PASSWORD,
            "password": "my Jane.Doe account!",
            "confirm": "my Jane.Doe account!",
        },
    ).get_data(as_text=True)
    assert "must not contain “jane.doe” (your User ID)" in page


def test_change_needs_the_current_password(client: FlaskClient) -> None:
    user = make_user()
    login(client, user.user_id)
    page = client.post(
        "/account/password",
        data={
            "current_password": "wrong wrong wrong",
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        },
    ).get_data(as_text=True)
    assert "The current password is wrong" in page
    client.post("/logout")
    assert login(client, user.user_id).status_code == 302  # the old password still works


def test_changing_the_password_ends_other_sessions(app: Flask) -> None:
    user = make_user()
    here, elsewhere = app.test_client(), app.test_client()
    login(here, user.user_id)
    login(elsewhere, user.user_id)
    here.post(
        "/account/password",
        data={"current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert here.get("/portal/").status_code == 200
    assert elsewhere.get("/portal/").status_code == 302


def test_reenabled_user_can_log_in_again(client: FlaskClient) -> None:
    user = lock_out(make_user())
    apply(user, rules.reenable(user.to_state(), now=clock.now(), today=clock.today()))
    assert login(client, user.user_id, "wrong password here").status_code == 200
    assert refresh(user).enabled  # one failure after re-enabling does not lock (LK-09)
    assert login(client, user.user_id).status_code == 302


def test_authenticated_pages_are_not_cached(client: FlaskClient) -> None:
    user = make_user()
    login(client, user.user_id)
    response = client.get("/portal/")
    assert response.headers["Cache-Control"] == "no-store"
    csp = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"

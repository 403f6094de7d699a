"""The daily-use polish of issue 12 point 5 over HTTP: the server's side of what
tests/e2e/test_console_polish.py checks in Chromium.

Runs on SQLite and, when PORTAL_TEST_DATABASE_URL is set, on PostgreSQL.
"""

from __future__ import annotations

import re
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal import clock
from portal import messages
from portal.extensions import db
from portal.shown_once import ShownOnce
from tests.console.users_helpers import HX_RESULTS
from tests.console.users_helpers import log_in_admin
from tests.console.users_helpers import one_time_password
from tests.factories import login
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import refresh
from tests.helpers import audit_events

# --- the own row -----------------------------------------------------------------------------


def test_the_own_row_is_marked_and_has_no_live_enabled_box(client: FlaskClient) -> None:
    org = make_org()
    admin = log_in_admin(client, org)
    other = make_user(org)
    body = client.get("/console/users", headers=HX_RESULTS).get_data(as_text=True)
    own_row = re.search(rf'<tr id="user-{admin.id}".*?</tr>', body, re.S)
    other_row = re.search(rf'<tr id="user-{other.id}".*?</tr>', body, re.S)
    assert own_row is not None
    assert other_row is not None
    assert "(you)" in own_row.group(0)
    # No live box (app.js posts a change of any enabled-<id> box that is not disabled) and no
    # no-JavaScript button.
    assert f'id="enabled-{admin.id}" disabled' in own_row.group(0)
    assert "<button" not in own_row.group(0)
    assert "You cannot remove your own access." in own_row.group(0)
    assert "(you)" not in other_row.group(0)
    assert f'id="enabled-{other.id}" checked' in other_row.group(0)
    assert f'<button name="remove" value="{other.id}"' in other_row.group(0)


# --- reset password and sign out: confirm first, a refresh changes nothing ---------------------


def test_reset_password_asks_first_and_shows_the_password_once(
    app: Flask, client: FlaskClient
) -> None:
    org = make_org()
    admin = log_in_admin(client, org)
    handler = make_user(org)
    hash_before = refresh(handler).password_hash

    ask = client.get(f"/console/users/{handler.id}/password-reset")
    assert ask.status_code == 200
    assert messages.CONFIRM_RESET_PASSWORD.format(user=handler.user_id) in ask.get_data(
        as_text=True
    )
    assert refresh(handler).password_hash == hash_before  # asking changes nothing
    assert audit_events(handler, "password_reset_by_admin") == []

    done = client.post(f"/console/users/{handler.id}/password-reset")
    assert done.status_code == 303
    target = done.headers["Location"]
    assert re.fullmatch(rf"/console/users/{handler.id}/one-time-password/[\w-]{{43}}", target)

    first = client.get(target)
    assert first.status_code == 200
    assert first.headers["Cache-Control"] == "no-store"
    password = one_time_password(first)
    # nowhere at rest in clear: not in the cookie session, not in the database row
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    assert password not in str(serializer.loads(cookie.value))
    db.session.rollback()
    rows = db.session.scalars(select(ShownOnce)).all()
    assert [r.sealed for r in rows] == [None]  # wiped once shown
    db.session.rollback()

    again = client.get(target)  # a refresh: no new reset, no password
    assert again.status_code == 200
    body = again.get_data(as_text=True)
    assert messages.ONE_TIME_PASSWORD_GONE in body
    assert password not in body
    assert len(audit_events(handler, "password_reset_by_admin", actor=admin)) == 1

    # the password works (and is the one shown)
    fresh = app.test_client()
    assert login(fresh, handler.user_id, password).headers["Location"] == "/account/password"


def test_the_one_time_password_page_is_only_for_the_administrator_who_reset(
    app: Flask, client: FlaskClient
) -> None:
    org = make_org()
    log_in_admin(client, org)
    handler = make_user(org)
    target = client.post(f"/console/users/{handler.id}/password-reset").headers["Location"]
    colleague = app.test_client()
    log_in_admin(colleague, org)
    body = colleague.get(target).get_data(as_text=True)
    assert messages.ONE_TIME_PASSWORD_GONE in body
    assert "<code>" not in body
    assert one_time_password(client.get(target))  # its own Administrator still sees it once


def test_an_old_one_time_password_page_shows_nothing(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    handler = make_user(org)
    target = client.post(f"/console/users/{handler.id}/password-reset").headers["Location"]
    clock.advance(timedelta(minutes=16))
    body = client.get(target).get_data(as_text=True)
    assert messages.ONE_TIME_PASSWORD_GONE in body
    assert "<code>" not in body


def test_sign_out_everywhere_asks_first(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    handler = make_user(org)
    token = refresh(handler).session_token
    ask = client.get(f"/console/users/{handler.id}/sign-out")
    assert messages.CONFIRM_SIGN_OUT.format(user=handler.user_id) in ask.get_data(as_text=True)
    assert refresh(handler).session_token == token
    done = client.post(f"/console/users/{handler.id}/sign-out")
    assert done.status_code == 303
    assert refresh(handler).session_token != token


# --- dates, labels, chips, grammar -------------------------------------------------------------


def test_dates_have_one_format_and_past_expiry_dates_are_marked(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    expired = make_user(org, expires_on=clock.today() - timedelta(days=1))
    current = make_user(org, expires_on=clock.today() + timedelta(days=40))
    body = client.get("/console/users", headers=HX_RESULTS).get_data(as_text=True)
    day = clock.today() - timedelta(days=1)
    ahead = clock.today() + timedelta(days=40)
    expired_row = re.search(rf'<tr id="user-{expired.id}".*?</tr>', body, re.S)
    current_row = re.search(rf'<tr id="user-{current.id}".*?</tr>', body, re.S)
    assert expired_row is not None
    assert current_row is not None
    assert f"{day.day} {day:%b %Y}" in expired_row.group(0)
    assert '<span class="tag tag-expired">expired</span>' in expired_row.group(0)
    assert f"{ahead.day} {ahead:%b %Y}" in current_row.group(0)
    assert "expired" not in current_row.group(0)
    assert day.isoformat() not in expired_row.group(0)


def test_the_user_pages_trail_uses_the_audit_logs_labels(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    handler = make_user(org)
    client.post(
        f"/console/users/{handler.id}/expiry",
        data={"expires_on": (clock.today() - timedelta(days=2)).isoformat()},
    )
    body = client.get(f"/console/users/{handler.id}").get_data(as_text=True)
    assert "Expiry date change refused" in body
    assert "date in the past" in body
    assert "refused_past_date" not in body
    assert "expiry refused" not in body


def test_drill_downs_show_removable_chips_and_counts_agree(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    make_user(org, user_id="soon-one", expires_on=clock.today() + timedelta(days=5))
    body = client.get("/console/users?expiring=30&profile=claims_handler").get_data(as_text=True)
    assert '<ul class="chips" aria-label="Filters in use">' in body
    assert 'href="/console/users?profile=claims_handler">Expiring within 30 days' in body
    assert 'href="/console/users?expiring=30">Profile: Claims Handler' in body
    assert re.search(r">\s*1 user expiring within 30 days<", body)
    assert "1 users" not in body
    plain = client.get("/console/users").get_data(as_text=True)
    assert 'class="chips"' not in plain
    dashboard = client.get("/console/").get_data(as_text=True)
    assert "1 users" not in dashboard
    assert re.search(r">1<span class=\"visually-hidden\"> user expires in the next", dashboard)


# --- LOGIN-10 after a flag change, whichever page notices ------------------------------------


def test_a_session_ended_on_a_public_page_still_says_login_10(
    app: Flask, client: FlaskClient
) -> None:
    org = make_org()
    log_in_admin(client, org)
    handler = make_user(org)
    theirs = app.test_client()
    assert login(theirs, handler.user_id).status_code == 302
    client.post(f"/console/users/{handler.id}/sign-out")
    assert theirs.get("/guides/").status_code == 200  # notices, says nothing there
    body = theirs.get("/portal/login").get_data(as_text=True)
    assert messages.get(messages.SESSION_ENDED).text in body
    assert 'href="/guides/troubleshooting#LOGIN-10"' in body
    again = theirs.get("/portal/login").get_data(as_text=True)  # said once
    assert messages.get(messages.SESSION_ENDED).text not in again


# --- the first-login change does not ask for the one-time password again ---------------------


def test_first_login_change_does_not_ask_for_the_one_time_password_again(
    app: Flask, client: FlaskClient
) -> None:
    org = make_org()
    log_in_admin(client, org)
    handler = make_user(org)
    target = client.post(f"/console/users/{handler.id}/password-reset").headers["Location"]
    one_time = one_time_password(client.get(target))
    theirs = app.test_client()
    assert login(theirs, handler.user_id, one_time).headers["Location"] == "/account/password"
    page = theirs.get("/account/password").get_data(as_text=True)
    assert 'name="current_password"' not in page
    assert messages.get(messages.MUST_CHANGE_PASSWORD).text in page
    same = theirs.post("/account/password", data={"password": one_time, "confirm": one_time})
    assert "The new password must be different from the current one" in same.get_data(as_text=True)
    new = "quiet harbour lantern seventeen"
    done = theirs.post("/account/password", data={"password": new, "confirm": new})
    assert done.status_code == 302
    assert not refresh(handler).must_change_password
    # a later, ordinary change asks for the current password again
    page = theirs.get("/account/password").get_data(as_text=True)
    assert 'name="current_password"' in page


# --- 403 and 404, navigation, landing ----------------------------------------------------------


def test_403_and_404_are_the_sites_own_pages_with_a_way_back(client: FlaskClient) -> None:
    missing = client.get("/no-such-page")
    assert missing.status_code == 404
    body = missing.get_data(as_text=True)
    assert "<h1>Page not found</h1>" in body
    assert 'id="way-back">Go to the start page</a>' in body
    org = make_org()
    handler = make_user(org)
    login(client, handler.user_id)
    refused = client.get("/console/users")
    assert refused.status_code == 403
    body = refused.get_data(as_text=True)
    assert "<h1>You cannot open this page</h1>" in body
    assert '<a href="/portal/" id="way-back">Go to your home page</a>' in body


def test_staff_land_on_their_work_page_and_navigation_marks_the_page(app: Flask) -> None:
    from portal.accounts.models import Profile

    work = ((Profile.HELPDESK, "/helpdesk/requests"), (Profile.PORTAL_TEAM, "/operator/"))
    for profile, landing in work:
        client = app.test_client()
        user = make_user(None, profile=profile)
        response = login(client, user.user_id)
        assert response.headers["Location"].rstrip("/") == landing.rstrip("/"), profile
    admin_client = app.test_client()
    org = make_org()
    log_in_admin(admin_client, org)
    page = admin_client.get("/console/users").get_data(as_text=True)
    assert '<a href="/console/users" aria-current="page">Users</a>' in page
    assert page.count('aria-current="page"') == 1


def test_an_administrators_portal_home_does_not_say_ask_yourself(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    body = client.get("/portal/").get_data(as_text=True)
    assert "Ask one of them to re-enable your User ID" not in body
    assert "You are the only Administrator with access" in body
    assert "(you)" in body


# --- the Administrator login messages and the reset request ------------------------------------


def test_forgotten_password_carries_the_user_id_and_sent_shows_no_second_form(
    client: FlaskClient,
) -> None:
    page = client.post(
        "/console/login", data={"user_id": "jane.admin", "password": "wrong password"}
    ).get_data(as_text=True)
    assert 'href="/password-reset?user_id=jane.admin" id="forgotten"' in page
    form = client.get("/password-reset?user_id=jane.admin").get_data(as_text=True)
    assert 'value="jane.admin"' in form
    sent = client.post(
        "/password-reset", data={"user_id": "jane.admin", "email": "jane@example.com"}
    ).get_data(as_text=True)
    assert messages.get(messages.RESET_REQUESTED).text in sent
    assert "Send the link" not in sent


def test_login_02_04_and_06_say_the_next_step_as_the_claims_handler_versions_do() -> None:
    # the message on the login page itself, not only the guide entry behind it
    assert "“Forgotten your password?” to unlock it" in messages.get("LOGIN-02").text.replace(
        '"', "“", 1
    ).replace('"', "”", 1)
    assert "Forgotten your password?" in messages.get("LOGIN-04").text
    assert "to extend it" in messages.get("LOGIN-06").text
    assert "Ask your Administrator" in messages.get("LOGIN-03").text
    assert "A reset" in messages.get("LOGIN-02").what_to_do
    assert "Portal team" in messages.get("LOGIN-06").what_to_do


def test_a_locked_out_administrator_is_told_the_next_step(client: FlaskClient) -> None:
    from portal.accounts.models import Profile
    from tests.factories import lock_out

    org = make_org()
    make_user(org, profile=Profile.ADMINISTRATOR)
    locked = lock_out(make_user(org, profile=Profile.ADMINISTRATOR))
    page = login(client, locked.user_id, door="console").get_data(as_text=True)
    assert "LOGIN-02" in page
    assert 'id="next-step"' in page
    assert "A reset also restores your access" in page

"""Self-service Administrator password reset over HTTP, with a real SMTP server (docs/rules.md R7,
R8; docs/security.md EN-03…EN-05, RS-01…RS-08, LG-02)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import update
from werkzeug.test import TestResponse

from portal import background
from portal import clock
from portal import mail_queue
from portal.accounts import management
from portal.accounts import password_reset
from portal.accounts import rules
from portal.accounts import service
from portal.accounts import tokens
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.accounts.tokens import PasswordResetToken
from portal.db import write_transaction
from portal.extensions import db
from portal.mail_queue import QueuedMail
from tests.factories import PASSWORD
from tests.factories import apply
from tests.factories import lock_out
from tests.factories import login
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import message_codes
from tests.factories import refresh
from tests.factories import remove_access
from tests.helpers import audit_events
from tests.helpers import csrf_token_in
from tests.mail_server import SmtpServer
from tests.mail_server import smtp_settings

BASE_URL = "https://portal.example.test"
NEW_PASSWORD = "a brand new phrase for my account"
#: The test SMTP server's own log (aiosmtpd): it shows what it received, link included.
TEST_SMTP_LOGGER = "mail.log"
LINK = re.compile(r"(https?://\S+/password-reset/)(\S+)")


@pytest.fixture
def settings(
    request: pytest.FixtureRequest,
    settings: dict[str, Any],
    smtp_server: SmtpServer,
    tmp_path: Any,
) -> dict[str, Any]:
    """The suite's settings, sending mail to the real SMTP server (markers still win)."""
    return smtp_settings(request, settings, smtp_server, tmp_path / "outbox", BASE_URL)


@pytest.fixture(autouse=True)
def _background_jobs(app: Flask) -> Iterator[None]:
    yield
    background.shutdown(app)


def settle(app: Flask) -> None:
    """Let the work done after the response finish (it runs in a background thread)."""
    background.wait_idle(app)


def ask(client: FlaskClient, user_id: str, email: str, **kwargs: Any) -> TestResponse:
    response = client.post("/password-reset", data={"user_id": user_id, "email": email}, **kwargs)
    settle(client.application)
    return response


def make_admin(org: Any = None, **kwargs: Any) -> User:
    return make_user(org, profile=Profile.ADMINISTRATOR, **kwargs)


def org_with_admins() -> tuple[Any, User]:
    """An organisation with a spare Administrator (so others can be removed) and ``admin``."""
    org = make_org()
    make_admin(org)
    return org, make_admin(org)


def token_from(message: Any) -> str:
    found = LINK.search(message.get_content())
    assert found is not None, message.get_content()
    return found.group(2)


def request_token(client: FlaskClient, smtp: SmtpServer, user: User) -> str:
    before = len(smtp.messages)
    ask(client, user.user_id, user.email)
    messages = smtp.wait_for(before + 1)
    assert len(messages) == before + 1
    return token_from(messages[-1])


def choose(client: FlaskClient, password: str = NEW_PASSWORD, confirm: str | None = None) -> Any:
    response = client.post(
        "/password-reset/new",
        data={"password": password, "confirm": password if confirm is None else confirm},
    )
    settle(client.application)
    return response


def reset(client: FlaskClient, token: str, password: str = NEW_PASSWORD) -> TestResponse:
    opened = client.get(f"/password-reset/{token}")
    assert opened.status_code == 302, opened.get_data(as_text=True)
    return choose(client, password)


def page_codes(response: TestResponse) -> list[str]:
    return re.findall(r"Code ((?:LOGIN|RESET)-\d+)", response.get_data(as_text=True))


def queued(purpose: str) -> list[QueuedMail]:
    db.session.rollback()
    db.session.expire_all()
    rows = list(
        db.session.scalars(
            select(QueuedMail).where(QueuedMail.purpose == purpose).order_by(QueuedMail.id)
        )
    )
    db.session.rollback()
    return rows


def all_mail_columns() -> str:
    """Every column of every queued email as the database holds it (what a dump would hold)."""
    db.session.rollback()
    rows = db.session.execute(text("SELECT * FROM mail_queue")).all()
    db.session.rollback()
    return repr(rows)


def reset_link_path(token: str) -> str:
    return f"/password-reset/{token}"


def token_count() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(PasswordResetToken))


def without_csrf(body: str) -> str:
    """The page without its CSRF tokens (the form's, and the one htmx sends as a header)."""
    body = re.sub(r'name="csrf_token"[^>]*value="[^"]*"', "", body)
    return re.sub(r'"X-CSRFToken": "[^"]*"', "", body)


def csrf_of(client: FlaskClient) -> str:
    page = client.get("/password-reset").get_data(as_text=True)
    return csrf_token_in(page)


# --- the request page: same answer, mail only to an eligible Administrator (EN-03…EN-05) --


@pytest.mark.config(WTF_CSRF_ENABLED=True)
def test_outbox_counts_with_identical_responses(app: Flask, smtp_server: SmtpServer) -> None:
    org, admin = org_with_admins()
    removed = remove_access(make_admin(org))
    handler = make_user(org)
    cases = [
        ("eligible admin", admin.user_id, admin.email, 1),
        ("unknown user", "no.such.user", "nobody@example.com", 0),
        ("wrong email", admin.user_id, "someone.else@example.com", 0),
        ("manually removed admin", removed.user_id, removed.email, 0),
        ("claims handler", handler.user_id, handler.email, 0),
    ]
    shapes = set()
    for name, user_id, email, expected in cases:
        client = app.test_client()
        before = len(smtp_server.messages)
        response = client.post(
            "/password-reset",
            data={"user_id": user_id, "email": email, "csrf_token": csrf_of(client)},
        )
        settle(app)
        assert len(smtp_server.wait_for(before + expected)) - before == expected, name
        shapes.add(
            (
                response.status_code,
                response.headers["Content-Type"],
                without_csrf(response.get_data(as_text=True)),
            )
        )
        assert "RESET-01" in response.get_data(as_text=True), name
    assert len(shapes) == 1
    assert next(iter(shapes))[0] == 200
    assert len(smtp_server.messages) == 1
    assert smtp_server.recipients == [admin.email]


def test_the_request_does_its_work_after_the_response_in_every_branch(
    app: Flask, client: FlaskClient, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EN-03: the view only hands the form to a background job, whatever was typed."""
    org, admin = org_with_admins()
    handler = make_user(org)
    jobs: list[tuple[Any, tuple[Any, ...]]] = []
    monkeypatch.setattr(background, "submit", lambda fn, *a, **k: jobs.append((fn, a)))
    for user_id, email in [
        (admin.user_id, admin.email),
        ("no.such.user", "x@example.com"),
        (handler.user_id, handler.email),
    ]:
        assert (
            client.post("/password-reset", data={"user_id": user_id, "email": email}).status_code
            == 200
        )
    assert [fn.__name__ for fn, _ in jobs] == ["request_reset"] * 3
    assert jobs[0][1][:2] == (admin.user_id, admin.email)
    assert token_count() == 0  # nothing was looked up or issued by the request itself
    assert smtp_server.messages == []


def test_empty_fields_are_asked_for_again(client: FlaskClient, smtp_server: SmtpServer) -> None:
    response = ask(client, "", "")
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Enter your User ID" in body
    assert "Enter the email address of your account" in body
    assert smtp_server.messages == []


@pytest.mark.config(WTF_CSRF_ENABLED=True)
def test_the_request_needs_a_csrf_token(client: FlaskClient, smtp_server: SmtpServer) -> None:
    _, admin = org_with_admins()
    assert ask(client, admin.user_id, admin.email).status_code == 400
    assert smtp_server.messages == []


def test_user_id_and_email_ignore_case_and_the_mail_goes_to_the_stored_address(
    client: FlaskClient, smtp_server: SmtpServer
) -> None:
    org = make_org()
    make_admin(org)
    admin = make_admin(org, user_id="Ada.Admin", email="Ada.Lovelace@Example.com")
    stored = refresh(admin).email
    ask(client, "  ada.ADMIN ", "ada.lovelace@EXAMPLE.COM ")
    [message] = smtp_server.wait_for(1)
    assert smtp_server.recipients == [stored]
    assert message["To"] == stored
    assert "Ada.Admin" in message.get_content()


def test_unicode_collisions_never_send_to_the_attackers_address(
    client: FlaskClient, smtp_server: SmtpServer
) -> None:
    """EN-05 (Django CVE-2019-19844): compare case-insensitively, send to the stored address."""
    org = make_org()
    make_admin(org)
    dotted = make_admin(org, email="mike@example.org")
    sharp = make_admin(org, email="strasse@example.org")
    ask(client, dotted.user_id, "mıke@example.org")  # dotless ı: not the same address
    ask(client, dotted.user_id, "MİKE@example.org")  # dotted İ casefolds to i + U+0307
    assert smtp_server.messages == []
    ask(client, sharp.user_id, "STRAßE@example.org")  # ß casefolds to ss: matches...
    smtp_server.wait_for(1)
    assert smtp_server.recipients == ["strasse@example.org"]  # ...but goes to the stored one


def test_the_link_uses_the_base_url_not_the_host_header(
    client: FlaskClient, smtp_server: SmtpServer
) -> None:
    """RS-06."""
    _, admin = org_with_admins()
    ask(client, admin.user_id, admin.email, headers={"Host": "evil.test"})
    ask(client, admin.user_id, admin.email, base_url="http://evil.test")
    messages = smtp_server.wait_for(2)
    for message in messages:
        body = message.get_content()
        assert "evil.test" not in body
        found = LINK.search(body)
        assert found is not None
        assert found.group(1) == f"{BASE_URL}/password-reset/"


def test_the_email_says_what_the_link_does(client: FlaskClient, smtp_server: SmtpServer) -> None:
    _, admin = org_with_admins()
    ask(client, admin.user_id, admin.email)
    [message] = smtp_server.wait_for(1)
    assert message["Subject"] == "Reset your Claims Portal Console password"
    assert message["From"] == "Claims Portal Console <no-reply@localhost>"
    body = message.get_content()
    assert "within 60 minutes" in body
    assert "works once" in body
    assert len(token_from(message)) >= 43


def test_requests_are_audited_without_what_was_typed(
    client: FlaskClient, smtp_server: SmtpServer
) -> None:
    org, admin = org_with_admins()
    handler = make_user(org)
    ask(client, admin.user_id, admin.email)
    ask(client, admin.user_id, "wrong@example.com")
    ask(client, handler.user_id, handler.email)
    assert len(audit_events(admin, "password_reset_requested")) == 1
    assert [e.reason for e in audit_events(admin, "password_reset_refused")] == ["email_mismatch"]
    assert [e.reason for e in audit_events(handler, "password_reset_refused")] == ["not_eligible"]
    for event in audit_events(admin, "password_reset_refused"):
        assert "wrong@example.com" not in (event.details or "")


# --- the link: out of the URL, single-use, bound to the account (RS-01, RS-02, RS-07) ----


def test_the_token_leaves_the_url_before_the_form_is_shown(
    client: FlaskClient, smtp_server: SmtpServer
) -> None:
    """RS-07."""
    _, admin = org_with_admins()
    token = request_token(client, smtp_server, admin)
    response = client.get(f"/password-reset/{token}")
    assert response.status_code == 302
    assert response.headers["Location"] == "/password-reset/new"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    page = client.get("/password-reset/new")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert token not in body
    assert admin.user_id in body
    assert page.headers["Referrer-Policy"] == "same-origin"  # Flask-WTF needs the Referer
    with client.session_transaction() as session:
        assert all(token not in str(value) for value in session.values())
    db.session.rollback()
    stored = db.session.scalars(select(PasswordResetToken.token_hash)).all()
    assert stored == [tokens.hash_token(token)]  # the database has only its hash


def test_the_form_without_an_opened_link_is_refused(client: FlaskClient) -> None:
    response = client.get("/password-reset/new")
    assert response.status_code == 404
    assert page_codes(response) == ["RESET-02"]
    assert choose(client).status_code == 404


def test_a_reset_link_works_once(client: FlaskClient, smtp_server: SmtpServer) -> None:
    _, admin = org_with_admins()
    token = request_token(client, smtp_server, admin)
    assert reset(client, token).headers["Location"] == "/console/login"
    again = client.get(f"/password-reset/{token}")
    assert again.status_code == 410
    assert page_codes(again) == ["RESET-04"]
    assert "/password-reset" in again.get_data(as_text=True)  # a link to ask for a new one


def test_a_second_tab_cannot_reuse_an_opened_link(app: Flask, smtp_server: SmtpServer) -> None:
    _, admin = org_with_admins()
    first, second = app.test_client(), app.test_client()
    token = request_token(first, smtp_server, admin)
    first.get(f"/password-reset/{token}")
    second.get(f"/password-reset/{token}")
    assert choose(first).status_code == 302
    response = choose(second, "another fine phrase to remember")
    assert response.status_code == 410
    assert page_codes(response) == ["RESET-04"]
    assert login(first, admin.user_id, NEW_PASSWORD, door="console").status_code == 302


@pytest.mark.parametrize("how", ["password-change", "login", "newer-reset"])
def test_a_link_stops_working_once_the_account_changes(
    app: Flask, client: FlaskClient, smtp_server: SmtpServer, how: str
) -> None:
    """RS-01: after any password change, after a login, after another reset."""
    _, admin = org_with_admins()
    token = request_token(client, smtp_server, admin)
    if how == "password-change":
        assert service.change_password(
            refresh(admin), current=PASSWORD, new=NEW_PASSWORD, now=clock.now()
        )
    elif how == "login":
        assert login(app.test_client(), admin.user_id, door="console").status_code == 302
    else:
        newer = request_token(client, smtp_server, admin)
        assert reset(app.test_client(), newer).status_code == 302
    response = client.get(f"/password-reset/{token}")
    assert response.status_code == 404
    assert page_codes(response) == ["RESET-02"]


def test_a_link_opened_before_a_login_stops_working_too(
    app: Flask, client: FlaskClient, smtp_server: SmtpServer
) -> None:
    _, admin = org_with_admins()
    token = request_token(client, smtp_server, admin)
    client.get(f"/password-reset/{token}")
    assert login(app.test_client(), admin.user_id, door="console").status_code == 302
    response = choose(client)
    assert page_codes(response) == ["RESET-02"]
    assert login(app.test_client(), admin.user_id, door="console").status_code == 302


def test_a_link_expires_after_60_minutes(
    app: Flask, client: FlaskClient, smtp_server: SmtpServer
) -> None:
    _, admin = org_with_admins()
    with clock.frozen(clock.now()):
        token = request_token(client, smtp_server, admin)
        clock.advance(timedelta(minutes=59, seconds=59))
        assert client.get(f"/password-reset/{token}").status_code == 302
        clock.advance(timedelta(seconds=1))
        response = app.test_client().get(f"/password-reset/{token}")
        assert response.status_code == 410
        assert page_codes(response) == ["RESET-03"]
        assert choose(client).status_code == 410  # the link opened in time expires as well
    assert refresh(admin).password_changed_at == admin.password_changed_at


@pytest.mark.config(PORTAL_RESET_TOKEN_MINUTES=15)
def test_the_lifetime_is_configurable(client: FlaskClient, smtp_server: SmtpServer) -> None:
    _, admin = org_with_admins()
    with clock.frozen(clock.now()):
        token = request_token(client, smtp_server, admin)
        assert "within 15 minutes" in smtp_server.messages[-1].get_content()
        clock.advance(timedelta(minutes=15))
        assert client.get(f"/password-reset/{token}").status_code == 410


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
        lambda t: t[:-1],
        lambda t: t + "x",
        lambda t: t * 5,
        lambda t: "x",
    ],
    ids=["changed", "shortened", "lengthened", "too-long", "other"],
)
def test_a_tampered_link_is_refused(
    client: FlaskClient, smtp_server: SmtpServer, tamper: Any
) -> None:
    _, admin = org_with_admins()
    token = request_token(client, smtp_server, admin)
    response = client.get(f"/password-reset/{tamper(token)}")
    assert response.status_code == 404
    assert page_codes(response) == ["RESET-02"]
    assert client.get(f"/password-reset/{token}").status_code == 302  # the real one still works


def test_as_token_changes_only_a(app: Flask, client: FlaskClient, smtp_server: SmtpServer) -> None:
    org = make_org()
    a, b = make_admin(org), make_admin(org)
    token_a = request_token(client, smtp_server, a)
    token_b = request_token(client, smtp_server, b)
    assert reset(app.test_client(), token_a).status_code == 302
    assert login(app.test_client(), a.user_id, NEW_PASSWORD, door="console").status_code == 302
    assert login(app.test_client(), b.user_id, PASSWORD, door="console").status_code == 302
    assert page_codes(client.get(f"/password-reset/{token_b}")) == ["RESET-02"]  # B logged in


def test_as_token_moved_onto_b_is_refused(client: FlaskClient, smtp_server: SmtpServer) -> None:
    """The binding is to the account as it was: a row pointed at another user is worthless."""
    org = make_org()
    a, b = make_admin(org), make_admin(org)
    token_a = request_token(client, smtp_server, a)
    with write_transaction(db.session):
        db.session.execute(update(PasswordResetToken).values(user_id=b.id))
    response = client.get(f"/password-reset/{token_a}")
    assert page_codes(response) == ["RESET-02"]
    assert refresh(b).password_changed_at == b.password_changed_at


def test_manual_removal_after_the_request_voids_the_link(
    client: FlaskClient, smtp_server: SmtpServer
) -> None:
    """RS-02: issue, remove the access, use: invalid, and the account stays removed."""
    _, admin = org_with_admins()
    changed_at = refresh(admin).password_changed_at
    token = request_token(client, smtp_server, admin)
    assert client.get(f"/password-reset/{token}").status_code == 302  # opened before removal
    remove_access(refresh(admin))
    response = choose(client)
    assert response.status_code == 404
    assert page_codes(response) == ["RESET-02"]
    assert page_codes(client.get(f"/password-reset/{token}")) == ["RESET-02"]
    admin = refresh(admin)
    assert (admin.enabled, admin.active) == (False, False)
    assert admin.password_changed_at == changed_at
    assert login(client, admin.user_id, NEW_PASSWORD, door="console").status_code == 200


# --- completing a reset (RS-03, RS-04, RS-05, RS-08) --------------------------------------


def _system_disable(admin: User, reason: str) -> User:
    if reason == "lockout":
        return lock_out(admin)
    return apply(admin, rules.sweep(admin.to_state(), now=clock.now(), today=clock.today()))


@pytest.mark.parametrize("reason", ["lockout", "inactivity"])
def test_a_reset_restores_access_after_a_system_disable(
    app: Flask, client: FlaskClient, smtp_server: SmtpServer, reason: str
) -> None:
    """RS-03 / R7: after lockout or inactivity the reset restores access."""
    org = make_org()
    make_admin(org)
    created = clock.now() - timedelta(days=91) if reason == "inactivity" else None
    admin = _system_disable(make_admin(org, created_at=created), reason)
    assert refresh(admin).disabled_reason == reason
    token = request_token(client, smtp_server, admin)
    response = reset(client, token)
    assert response.status_code == 302
    assert response.headers["Location"] == "/console/login"
    admin = refresh(admin)
    assert (admin.enabled, admin.active, admin.disabled_reason, admin.failed_attempts) == (
        True,
        True,
        None,
        0,
    )
    page = client.get("/console/login").get_data(as_text=True)
    assert "Your password has been changed. Log in with your new password." in page
    assert login(client, admin.user_id, PASSWORD, door="console").status_code == 200
    assert login(client, admin.user_id, NEW_PASSWORD, door="console").status_code == 302
    assert client.get("/console/").status_code == 200
    kinds = [
        e.kind
        for e in audit_events(admin, "password_reset")
        + audit_events(admin, "enabled")
        + audit_events(admin, "password_reset_completed")
    ]
    assert sorted(kinds) == ["enabled", "password_reset", "password_reset_completed"]


def test_after_expiry_the_password_changes_but_access_stays_off(
    client: FlaskClient, smtp_server: SmtpServer
) -> None:
    """RS-03 / R7: expiry stays until the date is extended."""
    org = make_org()
    make_admin(org)
    admin = _system_disable(make_admin(org, expires_on=clock.today()), "expiry")
    changed_at = refresh(admin).password_changed_at
    token = request_token(client, smtp_server, admin)
    response = reset(client, token)
    assert response.headers["Location"] == "/console/login"
    page = client.get("/console/login")
    assert "access stays off until the expiry date is extended" in page.get_data(as_text=True)
    assert message_codes(page) == ["LOGIN-06"]
    admin = refresh(admin)
    assert (admin.enabled, admin.disabled_reason) == (False, "expiry")
    assert admin.password_changed_at != changed_at
    refused = login(client, admin.user_id, NEW_PASSWORD, door="console")
    assert message_codes(refused) == ["LOGIN-06"]  # the new password is right
    notice = smtp_server.wait_for(2)[-1]
    assert "expiry date" in notice.get_content()


def test_an_administrator_with_access_may_reset_too(
    client: FlaskClient, smtp_server: SmtpServer
) -> None:
    _, admin = org_with_admins()
    token = request_token(client, smtp_server, admin)
    assert reset(client, token).status_code == 302
    assert login(client, admin.user_id, NEW_PASSWORD, door="console").status_code == 302


def test_a_reset_replaces_a_one_time_password(client: FlaskClient, smtp_server: SmtpServer) -> None:
    org = make_org()
    make_admin(org)
    admin = make_admin(org, one_time=True)
    token = request_token(client, smtp_server, admin)
    assert reset(client, token).status_code == 302
    assert not refresh(admin).must_change_password
    assert login(client, admin.user_id, NEW_PASSWORD, door="console").headers["Location"] == (
        "/console/"
    )


def test_requesting_a_reset_changes_nothing(client: FlaskClient, smtp_server: SmtpServer) -> None:
    """RS-04: the old password still works until a link is used."""
    _, admin = org_with_admins()
    before = refresh(admin)
    snapshot = (before.password_hash, before.session_token, before.enabled, before.failed_attempts)
    request_token(client, smtp_server, admin)
    after = refresh(admin)
    assert (after.password_hash, after.session_token, after.enabled, after.failed_attempts) == (
        snapshot
    )
    assert login(client, admin.user_id, PASSWORD, door="console").status_code == 302


def test_a_reset_ends_every_session_sends_a_notice_and_logs_nobody_in(
    app: Flask, client: FlaskClient, smtp_server: SmtpServer
) -> None:
    """RS-05."""
    _, admin = org_with_admins()
    elsewhere = app.test_client()
    assert login(elsewhere, admin.user_id, door="console").status_code == 302
    assert elsewhere.get("/console/").status_code == 200
    token = request_token(client, smtp_server, admin)  # (the login above came first)
    response = reset(client, token)
    assert response.status_code == 302
    assert response.headers["Location"] == "/console/login"
    gone = elsewhere.get("/console/")
    assert gone.status_code == 302
    assert gone.headers["Location"].startswith("/console/login")
    assert client.get("/console/").status_code == 302  # no automatic login
    _link, notice = smtp_server.wait_for(2)
    assert notice["To"] == refresh(admin).email
    assert notice["Subject"] == "Your Claims Portal Console password was changed"
    body = notice.get_content()
    assert admin.user_id in body
    assert NEW_PASSWORD not in body
    assert "/password-reset/" not in body


@pytest.mark.parametrize(
    ("password", "confirm", "message"),
    [
        ("short one", "short one", "at least 12 characters"),
        ("password1234", "password1234", "too common"),
        ("x" * 129, "x" * 129, "128 characters or fewer"),
        ("abcabcabcabcabc", "abcabcabcabcabc", "harder to guess"),
        (NEW_PASSWORD, "something else entirely", "do not match"),
        ("", "", "Enter a new password"),
    ],
)
def test_the_new_password_follows_the_policy(
    client: FlaskClient, smtp_server: SmtpServer, password: str, confirm: str, message: str
) -> None:
    """RS-08: the same policy as a change, entered twice; the link stays usable meanwhile."""
    _, admin = org_with_admins()
    token = request_token(client, smtp_server, admin)
    client.get(f"/password-reset/{token}")
    response = choose(client, password, confirm)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert message in page
    assert "There is a problem" in page
    assert refresh(admin).password_changed_at == admin.password_changed_at
    assert choose(client).status_code == 302  # then a good one


def test_the_new_password_may_not_contain_the_user_id(
    client: FlaskClient, smtp_server: SmtpServer
) -> None:
    org = make_org()
    make_admin(org)
    admin = make_admin(org, user_id="jane.doe")
    token = request_token(client, smtp_server, admin)
    client.get(f"/password-reset/{token}")
    page = choose(client, "my Jane.Doe account!").get_data(as_text=True)
    assert "must not contain “jane.doe” (your User ID)" in page


# --- limits (EN-04) -------------------------------------------------------------------


@pytest.mark.config(RATELIMIT_ENABLED=True, PORTAL_RESET_RATE_LIMIT="2 per hour")
def test_requests_are_rate_limited_per_address(
    client: FlaskClient, smtp_server: SmtpServer
) -> None:
    org = make_org()
    admins = [make_admin(org) for _ in range(3)]
    statuses = [ask(client, a.user_id, a.email).status_code for a in admins]
    assert statuses == [200, 200, 429]
    limited = ask(client, admins[2].user_id, admins[2].email)
    assert limited.status_code == 429
    assert page_codes(limited) == ["RESET-05"]
    assert "Wait an hour" in limited.get_data(as_text=True)
    assert client.get("/password-reset").status_code == 200  # the page itself still shows
    assert len(smtp_server.wait_for(2)) == 2
    settle(client.application)
    assert smtp_server.recipients == [admins[0].email, admins[1].email]


def test_at_most_three_links_per_account_per_hour(
    client: FlaskClient, smtp_server: SmtpServer
) -> None:
    _, admin = org_with_admins()
    with clock.frozen(clock.now()):
        for _ in range(5):
            assert ask(client, admin.user_id, admin.email).status_code == 200
        assert len(smtp_server.wait_for(3)) == 3
        refusals = [e.reason for e in audit_events(admin, "password_reset_refused")]
        assert refusals == ["too_many", "too_many"]
        clock.advance(timedelta(minutes=61))
        ask(client, admin.user_id, admin.email)
        assert len(smtp_server.wait_for(4)) == 4


def test_purge_expired_keeps_what_still_counts(
    client: FlaskClient, smtp_server: SmtpServer
) -> None:
    _, admin = org_with_admins()
    with clock.frozen(clock.now()):
        request_token(client, smtp_server, admin)
        clock.advance(timedelta(minutes=30))
        request_token(client, smtp_server, admin)
        clock.advance(timedelta(minutes=45))  # the first expired 15 minutes ago
        with write_transaction(db.session):
            assert tokens.purge_expired(clock.now()) == 1
        assert token_count() == 1
        clock.advance(timedelta(hours=2))
        with write_transaction(db.session):
            assert tokens.purge_expired(clock.now()) == 1
        assert token_count() == 0


# --- mail failures and logs ----------------------------------------------------------------


def test_a_mail_failure_never_undoes_or_breaks_a_reset_and_the_notice_waits(
    app: Flask, client: FlaskClient, smtp_server: SmtpServer
) -> None:
    _, admin = org_with_admins()
    token = request_token(client, smtp_server, admin)
    smtp_server.stop()
    response = reset(client, token)
    assert response.status_code == 302
    assert login(client, admin.user_id, NEW_PASSWORD, door="console").status_code == 302
    [notice] = queued(password_reset.NOTICE_PURPOSE)
    assert (notice.status, notice.attempts) == (mail_queue.PENDING, 1)
    smtp_server.start()
    with clock.frozen(clock.now() + mail_queue.BACKOFF[0]):
        assert mail_queue.run_due()["sent"] == 1
    _link, arrived = smtp_server.wait_for(2)
    assert arrived["Subject"] == "Your Claims Portal Console password was changed"
    assert len(smtp_server.messages) == 2


def test_smtp_down_the_link_waits_in_the_queue_encrypted_and_arrives_once(
    app: Flask, client: FlaskClient, smtp_server: SmtpServer
) -> None:
    """Issue 10 finding 3: the link used to be sent directly, and lost with SMTP down."""
    _, admin = org_with_admins()
    smtp_server.stop()
    ask(client, admin.user_id, admin.email)
    [link] = queued(password_reset.LINK_PURPOSE)
    assert (link.status, link.attempts, link.sealed) == (mail_queue.PENDING, 1, True)
    dump = all_mail_columns()
    smtp_server.start()
    with clock.frozen(clock.now() + mail_queue.BACKOFF[0]):
        assert mail_queue.run_due()["sent"] == 1
        assert mail_queue.run_due()["tried"] == 0
    [message] = smtp_server.wait_for(1)
    token = token_from(message)
    assert token not in dump  # the database held only ciphertext
    assert reset_link_path(token) not in dump
    [link] = queued(password_reset.LINK_PURPOSE)
    assert (link.status, link.body) == (mail_queue.SENT, "")  # wiped once sent
    assert token not in all_mail_columns()
    assert reset(client, token).status_code == 302
    assert len(smtp_server.messages) == 2  # the link once, then the notice


def test_a_link_unsent_when_it_expires_is_wiped_and_never_sent(
    app: Flask, client: FlaskClient, smtp_server: SmtpServer
) -> None:
    _, admin = org_with_admins()
    smtp_server.stop()
    with clock.frozen(clock.now()):
        ask(client, admin.user_id, admin.email)
        clock.advance(timedelta(minutes=60))
        smtp_server.start()
        assert mail_queue.run_due()["expired"] == 1
    [link] = queued(password_reset.LINK_PURPOSE)
    assert (link.status, link.body) == (mail_queue.EXPIRED, "")
    assert smtp_server.messages == []


def test_a_link_stops_working_once_the_email_address_changes(
    app: Flask, client: FlaskClient, smtp_server: SmtpServer
) -> None:
    """Issue 10 finding 7: the link went to the old address; it must not outlive it."""
    org, admin = org_with_admins()
    other = make_admin(org)
    token = request_token(client, smtp_server, admin)
    actor, subject = refresh(other), refresh(admin)
    with write_transaction(db.session):
        management.update_details(
            actor,
            subject,
            full_name=admin.full_name,
            email=admin.email.upper(),  # the same address in other case: the link still works
            profile=Profile.ADMINISTRATOR.value,
            now=clock.now(),
        )
    assert client.get(f"/password-reset/{token}").status_code == 302
    actor, subject = refresh(other), refresh(admin)
    with write_transaction(db.session):
        management.update_details(
            actor,
            subject,
            full_name=admin.full_name,
            email="new.address@example.com",
            profile=Profile.ADMINISTRATOR.value,
            now=clock.now(),
        )
    response = app.test_client().get(f"/password-reset/{token}")
    assert response.status_code == 404
    assert page_codes(response) == ["RESET-02"]
    assert choose(client).status_code == 404  # the link opened before the change stops too
    assert login(app.test_client(), admin.user_id, door="console").status_code == 302


def test_no_password_or_token_in_any_log_record(
    client: FlaskClient, smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    """LG-02, with every logger at DEBUG (SQLAlchemy's included)."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy")  # it sets its own level (WARNING)
    _, admin = org_with_admins()
    token = request_token(client, smtp_server, admin)
    assert reset(client, token).status_code == 302
    assert login(client, admin.user_id, NEW_PASSWORD, door="console").status_code == 302
    app_records = [r for r in caplog.records if not r.name.startswith(TEST_SMTP_LOGGER)]
    assert any(r.name.startswith("sqlalchemy") for r in app_records)  # the capture saw the run
    assert any(r.name == "portal.mail" for r in app_records)
    for record in app_records:
        text = record.getMessage() + repr(record.args) + str(record.__dict__)
        assert token not in text
        assert NEW_PASSWORD not in text


# --- where the reset is offered -------------------------------------------------------------


def test_the_console_login_offers_the_reset(client: FlaskClient) -> None:
    console = client.get("/console/login").get_data(as_text=True)
    assert '<a href="/password-reset" id="forgotten">Forgotten your password?</a>' in console
    assert "Forgotten your password?" not in client.get("/portal/login").get_data(as_text=True)
    page = client.get("/password-reset").get_data(as_text=True)
    assert "Claims Handlers" in page
    assert "ask one of your" in page


def test_reset_messages_are_in_the_troubleshooting_guide(client: FlaskClient) -> None:
    guide = client.get("/guides/troubleshooting").get_data(as_text=True)
    for code in ("RESET-01", "RESET-02", "RESET-03", "RESET-04", "RESET-05", "RESET-06"):
        assert f'id="{code}"' in guide
    assert guide.count("Forgotten your password?") >= 2  # LOGIN-02 and LOGIN-04 name the link
    page = client.get("/password-reset/not-a-token").get_data(as_text=True)
    assert 'href="/guides/troubleshooting#RESET-02"' in page

"""Passkeys over HTTP (docs/rules.md R10; docs/security.md PK-01 to PK-04) with a software
authenticator: added on /account/second-factor, used with "Use a passkey" on
/login/second-factor; a passkey is a right code (the wrong-code count goes to 0), a failed real
attempt a wrong code (the fifth locks), anything else is refused without counting.

Runs on SQLite and, when PORTAL_TEST_DATABASE_URL is set, PostgreSQL.
"""

from __future__ import annotations

import html
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy import update
from werkzeug.test import TestResponse

from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.audit import kinds
from portal.db import write_transaction
from portal.extensions import db
from portal.second_factor.models import SecondFactor
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import refresh
from tests.helpers import audit_events
from tests.second_factor.helpers import ENROL
from tests.second_factor.helpers import STEP
from tests.second_factor.helpers import add_totp
from tests.second_factor.helpers import code_step
from tests.second_factor.helpers import current_code
from tests.second_factor.helpers import password_step
from tests.second_factor.soft_authenticator import SoftAuthenticator

BASE = "http://localhost"
OPTIONS = re.compile(r'data-passkey-options-json="([^"]*)"')

pytestmark = pytest.mark.config(PORTAL_BASE_URL=BASE)


def options_on(response: TestResponse) -> str:
    found = OPTIONS.search(response.get_data(as_text=True))
    assert found is not None, "no passkey form on the page"
    return html.unescape(found.group(1))


def codes_on(response: TestResponse) -> list[str]:
    """The codes of the messages shown (not of the notices passkeys.js keeps hidden)."""
    page = re.sub(
        r"<div[^>]*data-passkey-notice.*?</div>", "", response.get_data(as_text=True), flags=re.S
    )
    return re.findall(r"Code ((?:MFA|PASSKEY)-\d+)", page)


def admin_with_totp() -> tuple[User, str]:
    org = make_org()
    make_user(org, profile=Profile.ADMINISTRATOR)
    admin = make_user(org, profile=Profile.ADMINISTRATOR)
    secret, _ = add_totp(admin)
    return admin, secret


def enrol_passkey(client: FlaskClient, admin: User, secret: str) -> SoftAuthenticator:
    password_step(client, admin, door="console")
    assert code_step(client, current_code(secret)).status_code == 302
    key = SoftAuthenticator(origin=BASE, rp_id="localhost")
    page = client.get(ENROL)
    response = client.post(
        ENROL, data={"passkey_name": "Work laptop", "credential": key.create(options_on(page))}
    )
    assert response.status_code == 200, codes_on(response)
    assert "Passkey “Work laptop” added" in response.get_data(as_text=True)
    client.post("/logout")
    return key


def set_failed_codes(user: User, count: int) -> None:
    with write_transaction(db.session):
        db.session.execute(update(User).where(User.id == user.id).values(failed_codes=count))


def test_add_a_passkey_then_log_in_with_it(client: FlaskClient) -> None:
    admin, secret = admin_with_totp()
    key = enrol_passkey(client, admin, secret)
    db.session.rollback()
    passkey = db.session.scalar(
        select(SecondFactor).where(SecondFactor.user_id == admin.id, SecondFactor.kind == "passkey")
    )
    assert passkey is not None
    assert (passkey.name, passkey.credential_id) == ("Work laptop", key.credential_id)
    assert passkey.transports == "internal"
    added = audit_events(admin, kinds.SECOND_FACTOR_ADDED)
    assert "passkey: Work laptop" in (added[-1].details or "")

    set_failed_codes(admin, 3)
    password_step(client, admin, door="console")
    page = client.get(STEP)
    assert "Use a passkey" in page.get_data(as_text=True)
    response = client.post(STEP, data={"credential": key.get(options_on(page))})
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/console/")
    assert client.get("/console/").status_code == 200
    fresh = refresh(admin)
    assert fresh.failed_codes == 0  # a passkey is a right code
    db.session.rollback()
    assert db.session.get(SecondFactor, passkey.id).sign_count == 1  # type: ignore[union-attr]
    done = audit_events(admin, kinds.EventKind.LOGIN_SUCCEEDED)
    assert "second factor: passkey" in (done[-1].details or "")


def test_a_wrong_signature_counts_as_a_wrong_code(client: FlaskClient) -> None:
    admin, secret = admin_with_totp()
    key = enrol_passkey(client, admin, secret)
    clone = SoftAuthenticator(origin=BASE, rp_id="localhost", credential_id=key.credential_id)
    password_step(client, admin, door="console")
    for n in range(1, 5):
        page = client.get(STEP)
        response = client.post(STEP, data={"credential": clone.get(options_on(page))})
        assert response.status_code == 200
        assert codes_on(response) == ["PASSKEY-02"]
        assert refresh(admin).failed_codes == n
    page = client.get(STEP)
    response = client.post(STEP, data={"credential": clone.get(options_on(page))})
    assert response.status_code == 302  # the fifth locks, like R1
    locked = refresh(admin)
    assert (locked.enabled, locked.disabled_reason, locked.failed_codes) == (False, "lockout", 5)


def test_answers_that_are_not_attempts_are_not_counted(client: FlaskClient) -> None:
    admin, secret = admin_with_totp()
    key = enrol_passkey(client, admin, secret)
    stranger = SoftAuthenticator(origin=BASE, rp_id="localhost")  # not registered
    password_step(client, admin, door="console")
    page = client.get(STEP)
    options = options_on(page)
    for credential in ("", "{", stranger.get(options)):
        response = client.post(STEP, data={"credential": credential})
        assert response.status_code == 200
        assert codes_on(response) == ["PASSKEY-01"]
    # A right answer, then the same answer again: its challenge is used up.
    answer = key.get(options)
    other = client.application.test_client()
    password_step(other, admin, door="console")
    assert client.post(STEP, data={"credential": answer}).status_code == 302
    replay = other.post(STEP, data={"credential": answer})
    assert codes_on(replay) == ["PASSKEY-01"]
    assert refresh(admin).failed_codes == 0


def test_another_origin_is_refused(client: FlaskClient) -> None:
    admin, secret = admin_with_totp()
    key = enrol_passkey(client, admin, secret)
    password_step(client, admin, door="console")
    page = client.get(STEP)
    response = client.post(
        STEP, data={"credential": key.get(options_on(page), origin="http://evil.example")}
    )
    assert codes_on(response) == ["PASSKEY-02"]  # our challenge, their page: a real attempt
    assert refresh(admin).failed_codes == 1


def test_adding_a_passkey_needs_a_recent_check(app: Flask, client: FlaskClient) -> None:
    """The same gate as for TOTP: after 5 minutes, a current factor first (no options shown,
    and a posted credential is refused)."""
    from datetime import timedelta

    from portal import clock

    admin, secret = admin_with_totp()
    password_step(client, admin, door="console")
    assert code_step(client, current_code(secret)).status_code == 302
    page = client.get(ENROL)
    options = options_on(page)
    clock.advance(timedelta(minutes=6))
    try:
        later = client.get(ENROL)
        assert 'id="passkey-later"' in later.get_data(as_text=True)
        key = SoftAuthenticator(origin=BASE, rp_id="localhost")
        response = client.post(
            ENROL, data={"passkey_name": "Late", "credential": key.create(options)}
        )
        assert response.status_code == 422
        assert codes_on(response)[0] == "MFA-06"
    finally:
        clock.reset()
    db.session.rollback()
    assert db.session.scalar(select(SecondFactor).where(SecondFactor.name == "Late")) is None


def test_a_passkey_needs_a_name(client: FlaskClient) -> None:
    admin, secret = admin_with_totp()
    password_step(client, admin, door="console")
    code_step(client, current_code(secret))
    page = client.get(ENROL)
    key = SoftAuthenticator(origin=BASE, rp_id="localhost")
    response = client.post(
        ENROL, data={"passkey_name": "  ", "credential": key.create(options_on(page))}
    )
    assert response.status_code == 422
    assert "PASSKEY-05" in codes_on(response)

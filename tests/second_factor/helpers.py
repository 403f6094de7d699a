"""Helpers for the second-factor tests: factors made through the service, codes computed as an
authenticator app would (pyotp, through ``portal.second_factor.totp``)."""

from __future__ import annotations

import re
from datetime import timedelta

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from portal import clock
from portal.accounts.models import User
from portal.db import write_transaction
from portal.extensions import db
from portal.second_factor import service
from portal.second_factor import totp
from tests.factories import PASSWORD
from tests.factories import login

STEP = "/login/second-factor"
ENROL = "/account/second-factor"
_MFA = re.compile(r"Code (MFA-\d+)")
_SECRET = re.compile(r'<code id="totp-secret"[^>]*>([A-Z2-7]+)</code>')
_RECOVERY = re.compile(r'<code class="recovery-code">([a-z0-9-]+)</code>')


def add_totp(user: User, name: str = "Phone") -> tuple[str, list[str]]:
    """Give ``user`` a TOTP factor as the enrolment page does; returns (secret, recovery
    codes).  The code used to confirm it is the previous step's (so the current one works)."""
    secret = totp.new_secret()
    earlier = clock.now() - timedelta(seconds=totp.STEP_SECONDS)
    with write_transaction(db.session):
        fresh = db.session.get(User, user.id)
        assert fresh is not None
        codes = service.add_totp(
            fresh, secret=secret, code=totp.code_at(secret, earlier), name=name, now=clock.now()
        )
    assert codes is not None
    return secret, codes


def current_code(secret: str) -> str:
    return totp.code_at(secret, clock.now())


def mfa_codes(response: TestResponse) -> list[str]:
    return _MFA.findall(response.get_data(as_text=True))


def secret_on(response: TestResponse) -> str:
    found = _SECRET.search(response.get_data(as_text=True))
    assert found is not None, "no totp-secret on the page"
    return found.group(1)


def recovery_codes_on(response: TestResponse) -> list[str]:
    return _RECOVERY.findall(response.get_data(as_text=True))


def password_step(
    client: FlaskClient, user: User, door: str = "portal", password: str = PASSWORD
) -> TestResponse:
    response = login(client, user.user_id, password, door=door)
    assert response.status_code == 302
    return response


def code_step(client: FlaskClient, code: str) -> TestResponse:
    return client.post(STEP, data={"code": code})

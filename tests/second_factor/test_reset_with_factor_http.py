"""R7 and R10 together, over HTTP on SQLite and PostgreSQL: a password reset never removes nor
skips the second factor.  An Administrator locked by five wrong codes resets its password by
the emailed link: access comes back (the wrong-code count with it), the factor stays, and the
next login still asks for the code."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from portal import background
from portal.accounts.models import Profile
from portal.second_factor import service
from tests.accounts.test_password_reset import NEW_PASSWORD
from tests.accounts.test_password_reset import request_token
from tests.accounts.test_password_reset import reset
from tests.accounts.test_password_reset import settings as settings
from tests.factories import login
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import refresh
from tests.mail_server import SmtpServer
from tests.second_factor.helpers import STEP
from tests.second_factor.helpers import add_totp
from tests.second_factor.helpers import code_step
from tests.second_factor.helpers import current_code
from tests.second_factor.helpers import password_step


def test_the_reset_link_does_not_skip_the_code(
    app: Flask, client: FlaskClient, smtp_server: SmtpServer
) -> None:
    org = make_org()
    make_user(org, profile=Profile.ADMINISTRATOR)
    admin = make_user(org, profile=Profile.ADMINISTRATOR)
    secret, _ = add_totp(admin)
    password_step(client, admin, door="console")
    for n in range(5):
        code_step(client, f"99999{n}")
    locked = refresh(admin)
    assert (locked.enabled, locked.disabled_reason, locked.failed_codes) == (False, "lockout", 5)
    background.wait_idle(app)
    notices = smtp_server.wait_for(2)  # the user's notice and the other Administrator's
    own = next(m for m in notices if m["To"] == admin.email)
    assert "wrong second-factor codes" in own.get_content()
    assert "password typed before them was right" in own.get_content()
    smtp_server.clear()

    token = request_token(client, smtp_server, admin)
    done = reset(client, token)
    assert done.status_code in (200, 302)
    restored = refresh(admin)
    assert (restored.enabled, restored.failed_codes) == (True, 0)
    assert service.has_factor(admin.id)  # the reset removed nothing
    # Not logged in by the reset, and the new password alone does not log in.
    assert client.get("/console/").status_code == 302
    response = login(client, admin.user_id, NEW_PASSWORD, door="console")
    assert response.headers["Location"].endswith(STEP)
    assert client.get("/console/").status_code == 302
    assert code_step(client, current_code(secret)).headers["Location"].endswith("/console/")
    assert client.get("/console/").status_code == 200


def _unused(_: Any) -> None:  # keeps the imported fixture name referenced for linters
    return None

"""The login's second step (docs/rules.md R10) over HTTP, on SQLite and PostgreSQL: a right
password is not a login; the code is; replays, recovery codes, the wrong-code count and its
lockout, the half-login's 5 minutes."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal import clock
from portal.accounts import rules
from portal.accounts.models import Profile
from portal.audit import kinds
from tests.factories import PASSWORD
from tests.factories import login
from tests.factories import make_user
from tests.factories import message_codes
from tests.factories import refresh
from tests.helpers import audit_count
from tests.second_factor.helpers import STEP
from tests.second_factor.helpers import add_totp
from tests.second_factor.helpers import code_step
from tests.second_factor.helpers import current_code
from tests.second_factor.helpers import mfa_codes
from tests.second_factor.helpers import password_step

MOMENT = datetime(2026, 11, 3, 10, 0, 5, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fixed_clock() -> object:
    with clock.frozen(MOMENT):
        yield


def test_a_right_password_asks_for_the_code_and_does_not_log_in(
    app: Flask, client: FlaskClient
) -> None:
    user = make_user()
    add_totp(user)
    response = password_step(client, user)
    assert response.headers["Location"].endswith(STEP)
    home = client.get("/portal/")
    assert home.status_code == 302
    assert "/portal/login" in home.headers["Location"]
    assert audit_count(user, rules.EventKind.PASSWORD_ACCEPTED) == 1
    assert audit_count(user, rules.EventKind.LOGIN_SUCCEEDED) == 0
    assert refresh(user).last_login_at is None
    page = client.get(STEP)
    assert page.status_code == 200
    assert 'name="code"' in page.get_data(as_text=True)


def test_login_with_a_totp_code(app: Flask, client: FlaskClient) -> None:
    user = make_user()
    secret, _ = add_totp(user)
    password_step(client, user)
    response = code_step(client, current_code(secret))
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/portal/")
    assert client.get("/portal/").status_code == 200
    assert audit_count(user, rules.EventKind.LOGIN_SUCCEEDED) == 1
    fresh = refresh(user)
    assert fresh.last_login_at == MOMENT
    assert fresh.failed_codes == 0


def test_codes_one_step_either_side_work_two_do_not(app: Flask) -> None:
    user = make_user()
    secret, _ = add_totp(user)
    for offset, works in ((-60, False), (30, True), (60, False)):
        client = app.test_client()
        password_step(client, user)
        code = current_code_at(secret, MOMENT + timedelta(seconds=offset))
        response = code_step(client, code)
        assert (response.status_code == 302) is works, offset


def current_code_at(secret: str, moment: datetime) -> str:
    from portal.second_factor import totp

    return totp.code_at(secret, moment)


def test_a_replayed_totp_code_is_refused(app: Flask) -> None:
    user = make_user()
    secret, _ = add_totp(user)
    code = current_code(secret)
    first, second = app.test_client(), app.test_client()
    password_step(first, user)
    password_step(second, user)
    assert code_step(first, code).status_code == 302
    replay = code_step(second, code)
    assert replay.status_code == 200
    assert mfa_codes(replay) == ["MFA-01"]
    assert second.get("/portal/").status_code == 302
    assert refresh(user).failed_codes == 1


def test_a_recovery_code_works_once(app: Flask) -> None:
    user = make_user()
    _, recovery_codes = add_totp(user)
    assert len(recovery_codes) == 10
    code = recovery_codes[3]
    first, second = app.test_client(), app.test_client()
    password_step(first, user)
    assert code_step(first, code.upper().replace("-", " ")).status_code == 302
    assert audit_count(user, kinds.RECOVERY_CODE_USED) == 1
    password_step(second, user)
    again = code_step(second, code)
    assert again.status_code == 200
    assert mfa_codes(again) == ["MFA-01"]
    third = app.test_client()
    password_step(third, user)
    assert code_step(third, recovery_codes[4]).status_code == 302


def test_five_wrong_codes_lock_exactly_and_a_right_password_does_not_reset_the_count(
    app: Flask, client: FlaskClient
) -> None:
    user = make_user()
    secret, _ = add_totp(user)
    password_step(client, user)
    for _ in range(3):
        assert mfa_codes(code_step(client, "000000")) == ["MFA-01"]
    # The password again (the count of wrong codes stays), one more wrong code: 4.
    password_step(client, user)
    assert refresh(user).failed_codes == 3
    assert mfa_codes(code_step(client, "000001")) == ["MFA-01"]
    fresh = refresh(user)
    assert (fresh.failed_codes, fresh.enabled) == (4, True)
    locked = code_step(client, "000002")
    assert locked.status_code == 302
    assert "/portal/login" in locked.headers["Location"]
    fresh = refresh(user)
    assert (fresh.failed_codes, fresh.enabled, fresh.disabled_reason) == (5, False, "lockout")
    assert fresh.failed_attempts == 0  # the passwords were right
    assert audit_count(user, rules.EventKind.LOCKED_OUT) == 1
    assert audit_count(user, rules.EventKind.CODE_FAILED) == 5
    notice = client.get(locked.headers["Location"])
    assert mfa_codes(notice) == ["MFA-02"]
    assert "password was right" in notice.get_data(as_text=True)
    # Locked: even the right password and code do not get in.
    assert message_codes(login(client, user.user_id)) == ["LOGIN-03"]
    assert current_code(secret)  # (the code would have been right)


def test_a_right_code_resets_the_count(app: Flask, client: FlaskClient) -> None:
    user = make_user()
    secret, _ = add_totp(user)
    password_step(client, user)
    code_step(client, "000000")
    code_step(client, "000001")
    assert refresh(user).failed_codes == 2
    assert code_step(client, current_code(secret)).status_code == 302
    assert refresh(user).failed_codes == 0


def test_a_re_enable_resets_the_count(app: Flask, client: FlaskClient) -> None:
    user = make_user()
    add_totp(user)
    password_step(client, user)
    for n in range(5):
        code_step(client, f"00000{n}")
    locked = refresh(user)
    assert locked.failed_codes == 5
    decision = rules.reenable(locked.to_state(), now=clock.now(), today=clock.today())
    assert decision.state.code_failures == 0
    assert rules.is_valid(decision.state)


def test_the_half_login_times_out_after_5_minutes(app: Flask, client: FlaskClient) -> None:
    user = make_user()
    secret, _ = add_totp(user)
    password_step(client, user)
    clock.advance(timedelta(minutes=5, seconds=1))
    response = code_step(client, current_code(secret))
    assert response.status_code == 302
    assert "/portal/login" in response.headers["Location"]
    assert mfa_codes(client.get(response.headers["Location"])) == ["MFA-03"]
    assert client.get("/portal/").status_code == 302
    assert refresh(user).last_login_at is None


def test_within_5_minutes_the_half_login_still_works(app: Flask, client: FlaskClient) -> None:
    user = make_user()
    secret, _ = add_totp(user)
    password_step(client, user)
    clock.advance(timedelta(minutes=4, seconds=50))
    assert code_step(client, current_code(secret)).status_code == 302


def test_the_code_step_without_a_password_goes_to_the_login(client: FlaskClient) -> None:
    response = client.post(STEP, data={"code": "123456"})
    assert response.status_code == 302
    assert "/portal/login" in response.headers["Location"]


def test_a_password_change_meanwhile_voids_the_half_login(app: Flask, client: FlaskClient) -> None:
    user = make_user()
    secret, _ = add_totp(user)
    password_step(client, user)
    from portal.db import write_transaction
    from portal.extensions import db

    with write_transaction(db.session):
        refresh_user = db.session.get(type(user), user.id)
        assert refresh_user is not None
        refresh_user.set_password("another long password for this")
    response = code_step(client, current_code(secret))
    assert response.status_code == 302
    assert "/portal/login" in response.headers["Location"]
    assert client.get("/portal/").status_code == 302


def test_an_expiry_reached_meanwhile_refuses_the_code_and_disables(
    app: Flask, client: FlaskClient
) -> None:
    user = make_user()
    secret, _ = add_totp(user)
    password_step(client, user)
    token = refresh(user).session_token
    from portal.db import write_transaction
    from portal.extensions import db

    with write_transaction(db.session):  # R3: the expiry date is reached before the code
        row = db.session.get(type(user), user.id)
        assert row is not None
        row.expires_on = clock.today()
    response = code_step(client, current_code(secret))
    assert response.status_code == 302
    assert "/portal/login" in response.headers["Location"]
    assert message_codes(client.get(response.headers["Location"])) == ["LOGIN-06"]
    fresh = refresh(user)
    assert (fresh.enabled, fresh.active, fresh.disabled_reason) == (False, True, "expiry")
    assert fresh.session_token != token  # D-5: a disable ends every session
    assert fresh.last_login_at is None
    assert fresh.failed_codes == 0
    assert audit_count(user, rules.EventKind.SYSTEM_DISABLED) == 1
    assert audit_count(user, rules.EventKind.LOGIN_REFUSED) == 1
    assert audit_count(user, rules.EventKind.LOGIN_SUCCEEDED) == 0
    assert client.get("/portal/").status_code == 302


def test_console_door_goes_to_the_console_after_the_code(app: Flask, client: FlaskClient) -> None:
    admin = make_user(profile=Profile.ADMINISTRATOR)
    secret, _ = add_totp(admin)
    password_step(client, admin, door="console")
    response = code_step(client, current_code(secret))
    assert response.headers["Location"].endswith("/console/")


def test_a_user_without_a_factor_logs_in_with_the_password(app: Flask, client: FlaskClient) -> None:
    user = make_user()
    response = login(client, user.user_id, PASSWORD)
    assert response.headers["Location"].endswith("/portal/")

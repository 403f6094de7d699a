"""Login through HTTP: R1, R2, R3, R7 eligibility, D-1 messages, one hash per attempt."""

from __future__ import annotations

import re
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta

import argon2
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlalchemy import select

from portal import clock
from portal import messages as codes
from portal.accounts import rules
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.extensions import db
from tests.factories import PASSWORD
from tests.factories import lock_out
from tests.factories import login
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import message_codes
from tests.factories import refresh
from tests.factories import remove_access
from tests.helpers import audit_count
from tests.helpers import csrf_token_in

WRONG = "not the right password at all"


def logged_in(client: FlaskClient) -> bool:
    return client.get("/portal/").status_code == 200


# --- R1 lockout ------------------------------------------------------------------------


def test_four_failures_then_success_resets_the_count(client: FlaskClient) -> None:
    user = make_user()
    for _ in range(4):
        response = login(client, user.user_id, WRONG)
        assert message_codes(response) == ["LOGIN-01"]
    assert refresh(user).failed_attempts == 4
    response = login(client, user.user_id)
    assert response.status_code == 302
    user = refresh(user)
    assert (user.failed_attempts, user.enabled) == (0, True)
    assert logged_in(client)


def test_fifth_failure_locks_and_the_right_password_then_gets_the_reason(
    client: FlaskClient,
) -> None:
    user = make_user()
    for _ in range(5):
        assert message_codes(login(client, user.user_id, WRONG)) == ["LOGIN-01"]
    user = refresh(user)
    assert (user.enabled, user.active, user.disabled_reason, user.failed_attempts) == (
        False,
        True,
        "lockout",
        5,
    )
    assert audit_count(user, "locked_out") == 1
    response = login(client, user.user_id)
    assert message_codes(response) == ["LOGIN-03"]  # a Claims Handler: ask the Administrator
    assert not logged_in(client)


def test_attempts_on_a_locked_account_change_nothing(client: FlaskClient) -> None:
    user = lock_out(make_user())
    for _ in range(10):
        login(client, user.user_id, WRONG)
    user = refresh(user)
    assert (user.failed_attempts, user.enabled, user.disabled_reason) == (5, False, "lockout")
    assert user.failed_attempts_without_access == 10  # R1 as amended: counted apart
    assert audit_count(user, "locked_out") == 0  # lock_out() went through the rules, not the login
    assert audit_count(user, "login_failed") == 10


def test_user_id_variants_share_one_counter_and_unknown_ids_add_no_rows(
    client: FlaskClient,
) -> None:
    user = make_user(user_id="Bob.Smith")
    for variant in ("bob.smith", " BOB.SMITH ", "Bob.Smith", "bOb.sMiTh", "bob.smith"):
        login(client, variant, WRONG)
    assert refresh(user).disabled_reason == "lockout"
    before = db.session.scalar(select(func.count()).select_from(User))
    for i in range(50):
        login(client, f"nobody-{i}", WRONG)
    assert db.session.scalar(select(func.count()).select_from(User)) == before


def test_variant_case_logs_in(client: FlaskClient) -> None:
    make_user(user_id="Mixed.Case")
    assert login(client, "  mixed.CASE ").status_code == 302


# --- D-1: the same answer whatever the reason, unless the password was right ------------


def _failure_branches() -> dict[str, str | None]:
    """Each branch's user id (None: unknown User ID)."""
    org = make_org()
    make_user(org, profile=Profile.ADMINISTRATOR)  # keep an Administrator with access
    locked = lock_out(make_user(org, user_id="locked.user"))
    removed = remove_access(make_user(org, user_id="removed.user"))
    old = clock.now() - timedelta(days=91)
    inactive = make_user(org, user_id="inactive.user", created_at=old)
    expired = make_user(org, user_id="expired.user", expires_on=clock.today())
    fine = make_user(org, user_id="fine.user")
    return {
        "unknown": "no.such.user",
        "wrong": fine.user_id,
        "locked": locked.user_id,
        "removed": removed.user_id,
        "inactive": inactive.user_id,
        "expired": expired.user_id,
    }


def _normalise(body: str, user_id: str) -> str:
    """Without the CSRF token and the echo of the User ID typed (the same for any User ID)."""
    body = re.sub(r'name="csrf_token"[^>]*value="[^"]*"', "", body)
    body = re.sub(r'"X-CSRFToken": "[^"]*"', "", body)
    return body.replace(f'value="{user_id}"', 'value=""')


def test_every_failure_with_a_wrong_password_looks_the_same(app: Flask) -> None:
    """Each branch from the same starting point (a new browser that loaded the login page), so
    that only the branch can make a difference."""
    branches = _failure_branches()
    shapes = set()
    for name, user_id in branches.items():
        client = app.test_client()
        client.get("/portal/login")
        response = login(client, user_id, WRONG)
        shapes.add(
            (
                response.status_code,
                _normalise(response.get_data(as_text=True), user_id),
                tuple(sorted(k for k, _ in response.headers if k != "Content-Length")),
            )
        )
        assert message_codes(response) == ["LOGIN-01"], name
    assert len(shapes) == 1


@pytest.fixture
def verify_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    original = argon2.PasswordHasher.verify

    def counting(self: argon2.PasswordHasher, hash: str, password: str | bytes) -> bool:
        calls.append(hash)
        return original(self, hash, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", counting)
    return calls


@pytest.mark.parametrize("password", [WRONG, PASSWORD], ids=["wrong", "right"])
def test_exactly_one_hash_verification_in_every_branch(
    client: FlaskClient, verify_calls: list[str], password: str
) -> None:
    branches = _failure_branches()
    for name, user_id in branches.items():
        verify_calls.clear()
        login(client, user_id, password)
        assert len(verify_calls) == 1, name
        client.post("/logout")


def test_the_specific_reason_only_after_a_correct_password(client: FlaskClient) -> None:
    branches = _failure_branches()
    expected = {
        "locked": "LOGIN-03",
        "removed": "LOGIN-07",
        "inactive": "LOGIN-05",
        "expired": "LOGIN-06",
        "unknown": "LOGIN-01",
    }
    for name, code in expected.items():
        assert message_codes(login(client, branches[name])) == [code], name


def test_each_message_links_to_its_guide_entry(client: FlaskClient) -> None:
    user = lock_out(make_user())
    body = login(client, user.user_id).get_data(as_text=True)
    assert 'href="/guides/troubleshooting#LOGIN-03"' in body
    guide = client.get("/guides/troubleshooting").get_data(as_text=True)
    for message in codes.MESSAGES:
        assert f'id="{message.code}"' in guide


# --- R7 eligibility shown after a correct password -------------------------------------


def test_locked_administrator_is_told_to_reset_its_own_password(client: FlaskClient) -> None:
    org = make_org()
    make_user(org, profile=Profile.ADMINISTRATOR)
    admin = lock_out(make_user(org, profile=Profile.ADMINISTRATOR))
    assert message_codes(login(client, admin.user_id, door="console")) == ["LOGIN-02"]
    assert rules.may_self_reset(refresh(admin).to_state(), is_admin=True)


def test_removed_administrator_may_not_reset(client: FlaskClient) -> None:
    org = make_org()
    make_user(org, profile=Profile.ADMINISTRATOR)
    admin = remove_access(make_user(org, profile=Profile.ADMINISTRATOR))
    assert message_codes(login(client, admin.user_id, door="console")) == ["LOGIN-07"]
    assert not rules.may_self_reset(refresh(admin).to_state(), is_admin=True)


def test_inactive_administrator_may_reset(client: FlaskClient) -> None:
    org = make_org()
    old = clock.now() - timedelta(days=100)
    admin = make_user(org, profile=Profile.ADMINISTRATOR, created_at=old)
    assert message_codes(login(client, admin.user_id, door="console")) == ["LOGIN-04"]


# --- R2 inactivity: 90 days vs 90 days + 1 second ---------------------------------------


@pytest.mark.parametrize(
    ("age", "allowed"),
    [
        (timedelta(days=89, hours=23, minutes=59, seconds=59), True),
        (timedelta(days=90), True),
        (timedelta(days=90, seconds=1), False),
    ],
    ids=["89d23h59m59s", "exactly-90d", "90d+1s"],
)
def test_inactivity_boundary(client: FlaskClient, age: timedelta, allowed: bool) -> None:
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    user = make_user(created_at=start, expires_on=date(2027, 1, 1))
    with clock.frozen(start + age):
        response = login(client, user.user_id)
        user = refresh(user)
        if allowed:
            assert response.status_code == 302
            assert user.enabled
        else:
            assert message_codes(response) == ["LOGIN-05"]
            assert (user.enabled, user.disabled_reason) == (False, "inactivity")


def test_inactivity_counts_from_the_last_login(client: FlaskClient) -> None:
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    user = make_user(created_at=start, expires_on=date(2027, 6, 1))
    with clock.frozen(start + timedelta(days=60)):
        assert login(client, user.user_id).status_code == 302
        client.post("/logout")
    with clock.frozen(start + timedelta(days=149)):  # 89 days after the last login
        assert login(client, user.user_id).status_code == 302


def test_inactive_user_with_a_wrong_password_is_disabled_but_told_nothing(
    client: FlaskClient,
) -> None:
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    user = make_user(created_at=start, expires_on=date(2027, 1, 1))
    with clock.frozen(start + timedelta(days=91)):
        assert message_codes(login(client, user.user_id, WRONG)) == ["LOGIN-01"]
    user = refresh(user)
    assert (user.enabled, user.disabled_reason, user.failed_attempts) == (False, "inactivity", 0)


# --- R3 expiry: today vs tomorrow in Europe/London, around a clock change -----------------


@pytest.mark.parametrize(
    ("moment", "allowed"),
    [
        # Autumn: London is UTC+1 until 01:00 UTC on 25 October 2026.
        (datetime(2026, 10, 24, 22, 59, 59, tzinfo=UTC), True),  # 23:59:59 on the 24th
        (datetime(2026, 10, 24, 23, 0, 0, tzinfo=UTC), False),  # 00:00 on the 25th in London
    ],
    ids=["day-before-in-london", "expiry-day-in-london-while-utc-is-still-the-day-before"],
)
def test_expiry_is_a_london_date(client: FlaskClient, moment: datetime, allowed: bool) -> None:
    user = make_user(created_at=moment - timedelta(days=10), expires_on=date(2026, 10, 25))
    with clock.frozen(moment):
        response = login(client, user.user_id)
    user = refresh(user)
    if allowed:
        assert response.status_code == 302
        assert user.enabled
    else:
        assert message_codes(response) == ["LOGIN-06"]
        assert (user.enabled, user.disabled_reason) == (False, "expiry")


@pytest.mark.parametrize(
    ("moment", "allowed"),
    [
        # Spring: London moves to UTC+1 at 01:00 UTC on 29 March 2026.
        (datetime(2026, 3, 29, 22, 59, 59, tzinfo=UTC), True),  # 23:59:59 BST on the 29th
        (datetime(2026, 3, 29, 23, 0, 0, tzinfo=UTC), False),  # 00:00 BST on the 30th
    ],
    ids=["last-second-before", "first-second-of-expiry-day"],
)
def test_expiry_after_the_spring_change(
    client: FlaskClient, moment: datetime, allowed: bool
) -> None:
    user = make_user(created_at=moment - timedelta(days=10), expires_on=date(2026, 3, 30))
    with clock.frozen(moment):
        response = login(client, user.user_id)
    assert (response.status_code == 302) is allowed


@pytest.mark.config(PORTAL_TIMEZONE="UTC")
def test_the_time_zone_is_a_setting(client: FlaskClient) -> None:
    moment = datetime(2026, 10, 24, 23, 0, 0, tzinfo=UTC)  # still the 24th in UTC
    user = make_user(created_at=moment - timedelta(days=10), expires_on=date(2026, 10, 25))
    with clock.frozen(moment):
        assert login(client, user.user_id).status_code == 302


# --- the two doors ---------------------------------------------------------------------


def test_administrator_reaches_the_console_and_handler_is_refused(client: FlaskClient) -> None:
    org = make_org()
    admin = make_user(org, profile=Profile.ADMINISTRATOR)
    handler = make_user(org)
    response = login(client, handler.user_id, door="console")
    assert message_codes(response) == ["LOGIN-08"]
    assert not logged_in(client)
    assert refresh(handler).last_login_at is None  # no login recorded at the wrong door
    response = login(client, admin.user_id, door="console")
    assert response.headers["Location"] == "/console/"
    assert "Admin Console" in client.get("/console/").get_data(as_text=True)


def test_handler_reaches_the_portal_home_with_its_administrators(client: FlaskClient) -> None:
    org = make_org("Acme Claims")
    admin = make_user(org, profile=Profile.ADMINISTRATOR)
    handler = make_user(org)
    assert login(client, handler.user_id).headers["Location"] == "/portal/"
    page = client.get("/portal/").get_data(as_text=True)
    assert handler.user_id in page
    assert admin.email in page
    assert "Acme Claims" in page
    assert client.get("/console/").status_code == 403


@pytest.mark.parametrize("profile", [Profile.HELPDESK, Profile.PORTAL_TEAM])
def test_operator_staff_use_the_portal_door(client: FlaskClient, profile: Profile) -> None:
    user = make_user(profile=profile)
    assert login(client, user.user_id).status_code == 302
    assert logged_in(client)
    client.post("/logout")
    assert message_codes(login(client, user.user_id, door="console")) == ["LOGIN-08"]


def test_next_is_followed_only_within_the_site(client: FlaskClient) -> None:
    user = make_user()
    response = client.post(
        "/portal/login?next=//evil.example/x", data={"user_id": user.user_id, "password": PASSWORD}
    )
    assert response.headers["Location"] == "/portal/"
    client.post("/logout")
    response = client.post(
        "/portal/login?next=/account/password", data={"user_id": user.user_id, "password": PASSWORD}
    )
    assert response.headers["Location"] == "/account/password"


def test_empty_and_overlong_input_gets_field_messages(client: FlaskClient, app: Flask) -> None:
    page = login(client, "", "").get_data(as_text=True)
    assert "Enter your User ID." in page
    assert "Enter your password." in page
    assert 'href="#user_id"' in page
    page = login(client, "someone", "x" * 10_000).get_data(as_text=True)
    assert "The password is too long." in page


def test_successful_login_is_audited(client: FlaskClient) -> None:
    user = make_user()
    login(client, user.user_id)
    assert audit_count(user, "login_succeeded") == 1
    assert refresh(user).last_login_at is not None


@pytest.mark.config(PORTAL_ARGON2_TIME_COST=2)
def test_hash_is_upgraded_when_parameters_change(client: FlaskClient, app: Flask) -> None:
    old = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    user = make_user()
    user.password_hash = old.hash(PASSWORD)
    db.session.commit()
    assert login(client, user.user_id).status_code == 302
    new_hash = refresh(user).password_hash
    assert new_hash.startswith("$argon2id$")
    assert "t=2" in new_hash
    client.post("/logout")
    assert login(client, user.user_id).status_code == 302  # and it still verifies


def test_production_hash_parameters() -> None:
    from portal.config import DEFAULTS

    params = argon2.extract_parameters(
        argon2.PasswordHasher(
            time_cost=DEFAULTS["PORTAL_ARGON2_TIME_COST"],
            memory_cost=DEFAULTS["PORTAL_ARGON2_MEMORY_COST"],
            parallelism=DEFAULTS["PORTAL_ARGON2_PARALLELISM"],
        ).hash("x")
    )
    assert params.type is argon2.Type.ID
    assert params.memory_cost >= 19456
    assert params.time_cost >= 2


@pytest.mark.config(RATELIMIT_ENABLED=True, PORTAL_LOGIN_RATE_LIMIT="3 per minute")
def test_login_posts_are_rate_limited_per_address(client: FlaskClient) -> None:
    for _ in range(3):
        assert login(client, "someone", WRONG).status_code == 200
    response = login(client, "someone", WRONG)
    assert response.status_code == 429
    assert message_codes(response) == ["LOGIN-09"]
    assert client.get("/portal/login").status_code == 200  # only the POST is limited
    other = client.post(
        "/portal/login",
        data={"user_id": "x", "password": "y"},
        environ_base={"REMOTE_ADDR": "10.9.9.9"},
    )
    assert other.status_code == 200


@pytest.mark.config(WTF_CSRF_ENABLED=True)
def test_login_needs_a_csrf_token(client: FlaskClient) -> None:
    user = make_user()
    response = login(client, user.user_id)
    assert response.status_code == 400
    assert message_codes(response) == ["LOGIN-15"]
    page = client.get("/portal/login").get_data(as_text=True)
    token = csrf_token_in(page)
    assert login(client, user.user_id, csrf_token=token).status_code == 302

"""Helpers for the Console users tests (test_users_*.py, test_user_page.py): constants, a
signed-in Administrator, bulk users, and the toggle, expiry and list requests."""

from __future__ import annotations

import re
from datetime import date
from datetime import datetime
from datetime import timedelta
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import func
from sqlalchemy import select
from werkzeug.test import TestResponse

from portal import clock
from portal.accounts import rules
from portal.accounts import service
from portal.accounts.models import Organisation
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.db import write_transaction
from portal.extensions import db
from portal.jobs import nightly
from tests.factories import PASSWORD
from tests.factories import apply
from tests.factories import login
from tests.factories import make_user
from tests.factories import refresh

CONFIRM = "Are you sure you want to remove this User’s access?"
HOSTILE = '"><img src=x onerror=alert(1)>'
HX = {"HX-Request": "true"}
HX_RESULTS = {"HX-Request": "true", "HX-Target": "user-results"}
ROW_IDS = re.compile(r'<tr id="user-(\d+)"')
ROW_USER_IDS = re.compile(r'<th scope="row"><a href="[^"]*"[^>]*>([^<]*)</a>')
OTP = re.compile(r"<code>([^<]+)</code>")


def log_in_admin(client: FlaskClient, org: Organisation, user_id: str | None = None) -> User:
    admin = make_user(org, user_id=user_id, profile=Profile.ADMINISTRATOR)
    response = login(client, admin.user_id, door="console")
    assert response.status_code == 302
    assert response.headers["Location"] == "/console/"
    return admin


def add_users(org: Organisation, count: int, prefix: str) -> list[User]:
    """``count`` Claims Handlers in one transaction (through the service, like the factory)."""
    now = clock.now()
    expiry = clock.today() + timedelta(days=365)
    with write_transaction(db.session):
        users = [
            service.create_user(
                user_id=f"{prefix}{n:03d}",
                full_name=f"Person {prefix}{n:03d}",
                email=f"{prefix}{n:03d}@example.com",
                profile=Profile.CLAIMS_HANDLER,
                organisation=org,
                expires_on=expiry,
                actor=None,
                now=now,
                password=PASSWORD,
            )[0]
            for n in range(count)
        ]
    return users


def rename(user: User, full_name: str) -> User:
    user = refresh(user)
    with write_transaction(db.session):
        user.full_name = full_name
    return refresh(user)


def sweep() -> None:
    with write_transaction(db.session):
        nightly.sweep(now=clock.now(), today=clock.today())


def user_count() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(User)) or 0


def toggle(
    client: FlaskClient, user: User | int, enabled: str, *, hx: bool = True, **extra: str
) -> TestResponse:
    pk = user if isinstance(user, int) else user.id
    return client.post(
        f"/console/users/{pk}/enabled",
        data={"enabled": enabled, **extra},
        headers=HX if hx else {},
    )


def set_expiry(client: FlaskClient, user: User, value: date | str, *, hx: bool = True) -> Any:
    text = value.isoformat() if isinstance(value, date) else value
    return client.post(
        f"/console/users/{user.id}/expiry", data={"expires_on": text}, headers=HX if hx else {}
    )


def listed(client: FlaskClient, query: str = "") -> list[str]:
    """The User IDs in the list's rows, in order."""
    response = client.get(f"/console/users{query}", headers=HX_RESULTS)
    assert response.status_code == 200
    return ROW_USER_IDS.findall(response.get_data(as_text=True))


def checkbox(body: str, user: User) -> str:
    """The Enabled checkbox of ``user``'s row."""
    found = re.search(rf'<input type="checkbox" id="enabled-{user.id}"[^>]*>', body)
    assert found is not None, f"no Enabled checkbox for {user.user_id}"
    return found.group(0)


def active_box(body: str, user: User) -> str:
    label = f'aria-label="Active: {user.user_id}"'
    found = re.search(rf'<input type="checkbox" disabled[^>]*{re.escape(label)}>', body)
    assert found is not None, f"no Active checkbox for {user.user_id}"
    return found.group(0)


def one_time_password(response: TestResponse) -> str:
    found = OTP.findall(response.get_data(as_text=True))
    assert len(found) == 1
    return found[0]


def flags(user: User) -> tuple[bool, bool, str | None]:
    fresh = refresh(user)
    return fresh.enabled, fresh.active, fresh.disabled_reason


def past_login(user: User, when: datetime) -> None:
    """A successful login at ``when`` (through the rules)."""
    user = refresh(user)
    apply(
        user,
        rules.login_attempt(
            user.to_state(), password_ok=True, now=when, today=clock.local_date(when)
        ),
    )

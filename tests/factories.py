"""Plain factory functions (indico ``create_user`` style).  States are reached through the
rules and the service, never by setting columns by hand."""

from __future__ import annotations

import re
from datetime import date
from datetime import datetime
from datetime import timedelta

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from portal import clock
from portal.accounts import rules
from portal.accounts import service
from portal.accounts.models import Organisation
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.db import write_transaction
from portal.extensions import db

PASSWORD = "correct horse battery staple"
_counter = iter(range(1, 1_000_000))


def make_org(name: str | None = None) -> Organisation:
    with write_transaction(db.session):
        org = service.create_organisation(
            name or f"Org {next(_counter)}", actor=None, now=clock.now()
        )
    return org


def make_user(
    org: Organisation | None = None,
    *,
    user_id: str | None = None,
    profile: Profile = Profile.CLAIMS_HANDLER,
    password: str = PASSWORD,
    expires_on: date | None = None,
    created_at: datetime | None = None,
    one_time: bool = False,
    email: str | None = None,
) -> User:
    """A user with ``password`` as its own (or a one-time password when ``one_time``)."""
    now = created_at or clock.now()
    if org is None and profile in (Profile.CLAIMS_HANDLER, Profile.ADMINISTRATOR):
        org = make_org()
    uid = user_id or f"user{next(_counter)}"
    if expires_on is None and org is not None:
        expires_on = clock.local_date(now) + timedelta(days=365)
    # The service refuses a date not after today (R3); a test that needs a user whose date is
    # reached (or reached on the day it was created) sets it on the row afterwards.
    allowed = expires_on is None or rules.expiry_allowed(expires_on, today=clock.local_date(now))
    with write_transaction(db.session):
        user, _ = service.create_user(
            user_id=uid,
            full_name=f"Name {uid}",
            email=email or f"{uid}@example.com",
            profile=profile,
            organisation=org,
            expires_on=expires_on if allowed else None,
            actor=None,
            now=now,
            password=None if one_time else password,
        )
        if not allowed:
            user.expires_on = expires_on
        if one_time:
            user.set_password(password)
    return user


def apply(user: User, decision: rules.Decision) -> User:
    with write_transaction(db.session):
        user.apply(decision.state)
    return user


def lock_out(user: User) -> User:
    """Five wrong passwords through the rules."""
    now, today = clock.now(), clock.today()
    with write_transaction(db.session):
        for _ in range(rules.LOCKOUT_AFTER):
            state = user.to_state()
            user.apply(rules.login_attempt(state, password_ok=False, now=now, today=today).state)
    assert user.disabled_reason == "lockout"
    return user


def remove_access(user: User) -> User:
    return apply(
        user, rules.remove_access(user.to_state(), actor_is_self=False, is_last_admin=False)
    )


def refresh(user: User) -> User:
    """The user as the database has it now (ends the test's read transaction: on SQLite in WAL
    mode an open read transaction keeps seeing its old snapshot) and forgets what it had loaded
    (the session does not expire objects on commit)."""
    db.session.rollback()
    db.session.expire_all()
    fresh = db.session.get(User, user.id)
    assert fresh is not None
    return fresh


def login(
    client: FlaskClient, user_id: str, password: str = PASSWORD, door: str = "portal", **extra: str
) -> TestResponse:
    return client.post(f"/{door}/login", data={"user_id": user_id, "password": password, **extra})


def message_codes(response: TestResponse) -> list[str]:
    """The LOGIN-nn codes shown in the page's message box."""
    return re.findall(r"Code (LOGIN-\d+)", response.get_data(as_text=True))

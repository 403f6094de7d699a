"""Helpers for the Portal team's tests: helpdesk requests, user states reached through the
rules, and a snapshot of every account (signing in and audit queries: ``tests/helpers.py``)."""

from __future__ import annotations

from datetime import date
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from portal import clock
from portal.accounts import rules
from portal.accounts.models import Organisation
from portal.accounts.models import User
from portal.db import write_transaction
from portal.extensions import db
from portal.helpdesk.models import HelpdeskRequest
from tests.factories import apply
from tests.factories import make_user


def make_request(
    *, user_id: str | None = None, status: str = "referred", email: str = "ada@acme.example"
) -> HelpdeskRequest:
    """A Contact Us request, inserted directly (the Helpdesk forms are another issue's)."""
    now = clock.now()
    with write_transaction(db.session):
        req = HelpdeskRequest(
            kind="contact",
            status=status,
            created_at=now,
            updated_at=now,
            environment="live",
            stated_role="administrator",
            console="admin_console",
            error_message="Your User ID has expired",
            name="Ada Requester",
            email=email,
            email_key=email.casefold(),
            organisation_name="Acme Claims Ltd",
            user_id_given=user_id,
            user_id_key=user_id.casefold() if user_id else None,
        )
        db.session.add(req)
        db.session.flush()
    return req


def expired(org: Organisation | None = None, **kwargs: Any) -> User:
    """A user whose expiry date was yesterday, disabled for it (as the nightly sweep does)."""
    user = make_user(org, expires_on=clock.today() - timedelta(days=1), **kwargs)
    apply(user, rules.sweep(user.to_state(), now=clock.now(), today=clock.today()))
    assert user.disabled_reason == "expiry"
    return user


def inactive(org: Organisation | None = None, **kwargs: Any) -> User:
    """A user last granted access 100 days ago, disabled for inactivity (as the sweep does)."""
    user = make_user(org, created_at=clock.now() - timedelta(days=100), **kwargs)
    apply(user, rules.sweep(user.to_state(), now=clock.now(), today=clock.today()))
    assert user.disabled_reason == "inactivity"
    return user


def accounts_snapshot(*, skip: User | None = None) -> tuple[list[Any], list[Any]]:
    """Every column of every user (but ``skip``) and every organisation, as stored now."""
    db.session.rollback()
    users = select(User.__table__).order_by(User.id)
    if skip is not None:
        users = users.where(User.id != skip.id)
    orgs = select(Organisation.__table__).order_by(Organisation.id)
    return (
        [tuple(r) for r in db.session.execute(users)],
        [tuple(r) for r in db.session.execute(orgs)],
    )


def future(days: int = 200) -> date:
    return clock.today() + timedelta(days=days)

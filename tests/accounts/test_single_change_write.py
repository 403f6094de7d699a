"""A single Enabled change is written by one UPDATE built once (``management._write_now``),
not by the ORM's flush: the row, the session token and the entity must still agree.

Runs on SQLite and, when PORTAL_TEST_DATABASE_URL is set, on PostgreSQL.
"""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from portal import clock
from portal.accounts import management
from portal.accounts import rules
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.accounts.models import state_columns
from portal.db import write_transaction
from portal.extensions import db
from tests.factories import make_org
from tests.factories import make_user


def test_the_update_names_every_column_a_state_writes(app: Flask) -> None:
    """A column ``state_columns`` gains would otherwise be set on the entity but never stored."""
    state = make_user(make_org()).to_state()
    named = {str(getattr(key, "key", key)) for key in management._UPDATE_STATE._values}
    assert named == {*state_columns(state), "session_token"}


def test_a_single_change_is_stored_and_the_entity_is_clean(app: Flask) -> None:
    org = make_org()
    admin = make_user(org, user_id="write.admin", profile=Profile.ADMINISTRATOR)
    handler = make_user(org, user_id="write.handler")
    token_before = handler.session_token
    now, today = clock.now(), clock.today()

    with write_transaction(db.session):
        user = management.lock_organisation_user(org.id, handler.id)
        assert user is not None
        decision = management.set_enabled(
            admin, user, enabled=False, now=now, today=today, locked=True
        )
        assert decision.outcome is rules.Outcome.OK
        assert not db.session.dirty  # written by the UPDATE, not left for a flush

    assert user.enabled is False
    assert user.active is False
    assert user.session_token != token_before  # a disable ends every session (D-5)
    db.session.expire_all()
    stored = db.session.execute(
        select(User.enabled, User.active, User.session_token).where(User.id == handler.id)
    ).one()
    assert tuple(stored) == (False, False, user.session_token)

    with write_transaction(db.session):
        user = management.lock_organisation_user(org.id, handler.id)
        assert user is not None
        again = management.set_enabled(admin, user, enabled=True, now=now, today=today, locked=True)
        assert again.outcome is rules.Outcome.OK
    db.session.expire_all()
    assert db.session.get(User, handler.id).enabled is True  # type: ignore[union-attr]

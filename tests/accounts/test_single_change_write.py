"""A single Enabled change is written by one UPDATE of the columns that change
(``management._write_now``), not by the ORM's flush: the row, the session token and the entity
must still agree.

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
from portal.db import write_transaction
from portal.extensions import db
from tests.factories import make_org
from tests.factories import make_user
from tests.statements import counting_statements


def test_the_update_sets_only_the_columns_that_change(app: Flask) -> None:
    """A disable writes Enabled, Active and the session token, not every column of the state
    (each indexed column written is an index entry rewritten)."""
    org = make_org()
    admin = make_user(org, user_id="cols.admin", profile=Profile.ADMINISTRATOR)
    handler = make_user(org, user_id="cols.handler")
    with counting_statements() as seen, write_transaction(db.session):
        user = management.lock_organisation_user(org.id, handler.id)
        assert user is not None
        management.set_enabled(
            admin, user, enabled=False, now=clock.now(), today=clock.today(), locked=True
        )
    updates = [" ".join(sql.split()) for sql in seen if sql.lstrip().upper().startswith("UPDATE")]
    assert len(updates) == 1
    set_clause = updates[0].split(" SET ", 1)[1].split(" WHERE ", 1)[0]
    assert sorted(part.split("=")[0].strip() for part in set_clause.split(",")) == [
        "active",
        "enabled",
        "session_token",
    ]


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

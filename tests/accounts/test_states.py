"""``portal/accounts/states.py``: the SQL predicates say what ``rules`` says, on the real
database (SQLite, and PostgreSQL when PORTAL_TEST_DATABASE_URL is set), for generated account
states and dates; and "Administrator with access" follows the rules (docs/rules.md R4, §7):
an Administrator past its expiry date, not yet swept, no longer counts."""

from __future__ import annotations

from datetime import date
from datetime import datetime
from datetime import timedelta

from click.testing import Result
from flask import Flask
from flask.testing import FlaskCliRunner
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from sqlalchemy import ColumnElement
from sqlalchemy import case
from sqlalchemy import select

from portal import clock
from portal.accounts import management
from portal.accounts import notices
from portal.accounts import rules
from portal.accounts import service
from portal.accounts import states
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.accounts.rules import Access
from portal.accounts.rules import AccountState
from portal.accounts.rules import Reason
from portal.db import write_transaction
from portal.extensions import db
from portal.mail_queue import QueuedMail
from tests.factories import lock_out
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import refresh
from tests.rules.test_rules_properties import situations


def _as_flag(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """The condition as WHERE reads it (NULL is false), selectable as a value."""
    return case((condition, True), else_=False)


def _sql_answers(pk: int, now: datetime, today: date) -> dict[str, bool]:
    named = {
        **{f"in_state:{a.value}": states.in_state(a) for a in Access},
        **{f"reason:{r.value}": states.in_state(Access.SYSTEM_DISABLED, r) for r in Reason},
        "expired": states.expired(today),
        "inactive": states.inactive(now),
        "with_access": states.with_access(now, today),
        "administrator_with_access": states.administrator_with_access(now, today),
    }
    row = db.session.execute(
        select(*(_as_flag(c) for c in named.values())).where(User.id == pk)
    ).one()
    return {name: bool(value) for name, value in zip(named, row, strict=True)}


def _rules_answers(s: AccountState, now: datetime, today: date) -> dict[str, bool]:
    return {
        **{f"in_state:{a.value}": rules.access(s) is a for a in Access},
        **{
            f"reason:{r.value}": rules.access(s) is Access.SYSTEM_DISABLED and s.reason is r
            for r in Reason
        },
        "expired": rules.is_expired(s, today),
        "inactive": rules.last_use(s) < rules.inactivity_cutoff(now),
        "with_access": rules.has_access(s, now, today),
        "administrator_with_access": rules.has_access(s, now, today),  # the user is an admin
    }


def test_the_sql_predicates_agree_with_the_rules(app: Flask) -> None:
    admin = make_user(make_org(), profile=Profile.ADMINISTRATOR)

    @settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(situations())
    def check(situation: tuple[AccountState, datetime, date]) -> None:
        s, now, today = situation
        with write_transaction(db.session):
            user = db.session.get(User, admin.id)
            assert user is not None
            user.apply(s)
        db.session.expire_all()  # read the row back as stored
        user = db.session.get(User, admin.id)
        assert user is not None
        assert user.to_state() == s  # what the database stored is the state generated
        expected = _rules_answers(s, now, today)
        assert _sql_answers(admin.id, now, today) == expected, s
        assert states.state_of(user) is rules.access(s)
        assert states.has_access(user, now, today) is expected["with_access"]
        assert states.is_administrator_with_access(user, now, today) is expected["with_access"]
        assert states.is_expired(s.expires_on, today) is expected["expired"]

    check()


def test_labels_cover_every_state_and_reason() -> None:
    assert set(states.STATE_LABELS) == set(Access)
    assert set(states.REASON_LABELS) == set(Reason) == set(states.REASON_CAUSES)
    assert states.reason_label("inactivity") == f"Inactive {rules.INACTIVITY.days}+ days"
    assert states.reason_label(None) == ""
    assert states.state_label("system_disabled") == "System-disabled"


# --- "Administrator with access" follows the rules ------------------------------------------


def _two_admins_one_expiring() -> tuple[User, User]:
    """An organisation with two Administrators: ``expiring`` reaches its expiry date tomorrow."""
    org = make_org()
    tomorrow = clock.today() + timedelta(days=1)
    expiring = make_user(org, profile=Profile.ADMINISTRATOR, expires_on=tomorrow)
    other = make_user(org, profile=Profile.ADMINISTRATOR)
    return expiring, other


def test_an_expired_administrator_does_not_count_for_the_last_administrator_rule(
    app: Flask,
) -> None:
    expiring, other = _two_admins_one_expiring()
    with clock.frozen(clock.now() + timedelta(days=2)):
        now, today = clock.now(), clock.today()
        assert refresh(expiring).enabled  # not swept: Enabled is still ticked
        assert management.is_last_admin_with_access(refresh(other), now=now, today=today)
        actor, target = refresh(expiring), refresh(other)
        with write_transaction(db.session):
            decision = management.set_enabled(actor, target, enabled=False, now=now, today=today)
        assert decision.outcome is rules.Outcome.REFUSED_LAST_ADMIN
        assert refresh(other).enabled
        actor, target = refresh(expiring), refresh(other)
        with write_transaction(db.session):
            change = management.update_details(
                actor,
                target,
                full_name="Still Admin",
                email="still.admin@example.com",
                profile=Profile.CLAIMS_HANDLER.value,
                now=now,
            )
        assert change.outcome is rules.Outcome.REFUSED_LAST_ADMIN
        assert refresh(other).profile == Profile.ADMINISTRATOR.value


def test_before_its_expiry_date_the_other_administrator_still_counts(app: Flask) -> None:
    _expiring, other = _two_admins_one_expiring()
    now, today = clock.now(), clock.today()
    assert not management.is_last_admin_with_access(refresh(other), now=now, today=today)


def test_the_expiry_digest_skips_an_expired_administrator(app: Flask) -> None:
    _expiring, other = _two_admins_one_expiring()
    make_user(
        db.session.get(User, other.id).organisation,
        user_id="soon.gone",
        expires_on=clock.today() + timedelta(days=10),
    )
    with clock.frozen(clock.now() + timedelta(days=2)), write_transaction(db.session):
        counts = notices.queue_expiry_digests(now=clock.now(), today=clock.today())
    assert counts == {"organisations": 1, "digests": 1}
    db.session.rollback()
    sent_to = db.session.scalars(
        select(QueuedMail.to_address).where(QueuedMail.purpose == notices.DIGEST_PURPOSE)
    ).all()
    assert sent_to == [refresh(other).email]


def test_the_portal_home_lists_only_administrators_with_access(app: Flask) -> None:
    expiring, other = _two_admins_one_expiring()
    org_id = refresh(other).organisation_id
    listed = service.organisation_administrators(org_id, now=clock.now(), today=clock.today())
    assert {u.id for u in listed} == {expiring.id, other.id}
    later = clock.now() + timedelta(days=2)
    listed = service.organisation_administrators(org_id, now=later, today=clock.local_date(later))
    assert [u.id for u in listed] == [other.id]


# --- the CLI names the state ---------------------------------------------------------------


def _portal(runner: FlaskCliRunner, *args: str) -> Result:
    return runner.invoke(args=["portal", *args])


def test_the_cli_calls_a_system_disabled_user_system_disabled(
    app: Flask, runner: FlaskCliRunner
) -> None:
    handler = lock_out(make_user(make_org()))
    result = _portal(runner, "disable", handler.user_id)
    assert result.exit_code == 0, result.output
    assert f"{handler.user_id}: unchanged system-disabled" in result.output
    assert "access removed" not in result.output

"""The nightly sweep's set-based SQL (R2, R3) on SQLite and PostgreSQL: boundaries, agreement
with ``rules.sweep``, batches, idempotence and the audit rows."""

from __future__ import annotations

from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import func
from sqlalchemy import select

from portal import clock
from portal.accounts import rules
from portal.accounts.models import User
from portal.audit.models import AuditEvent
from portal.db import write_transaction
from portal.extensions import db
from portal.jobs import nightly
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import refresh
from tests.helpers import audit_events

NIGHT = datetime(2026, 6, 15, 1, 0, tzinfo=UTC)  # 02:00 in London (BST)


def system_disabled_events() -> list[AuditEvent]:
    return audit_events(kind=rules.EventKind.SYSTEM_DISABLED.value)


def state(user: User) -> tuple[bool, str | None]:
    fresh = refresh(user)
    return fresh.enabled, fresh.disabled_reason


def test_inactivity_boundary_exactly_90_days_vs_one_second_more(app: Flask) -> None:
    org = make_org()
    exactly = make_user(org, created_at=NIGHT - rules.INACTIVITY)
    over = make_user(org, created_at=NIGHT - rules.INACTIVITY - timedelta(seconds=1))
    with clock.frozen(NIGHT):
        report = nightly.run_sweep(now=clock.now(), today=clock.today())
    assert report.counts == {"expiry": 0, "inactivity": 1}
    assert state(exactly) == (True, None)
    assert state(over) == (False, "inactivity")


@pytest.mark.parametrize(
    ("moment", "today"),
    [
        # Clocks go back at 02:00 BST on 25 Oct 2026: 23:59:59 BST is 22:59:59 UTC.
        (datetime(2026, 10, 24, 22, 59, 59, tzinfo=UTC), date(2026, 10, 24)),
        (datetime(2026, 10, 24, 23, 0, 0, tzinfo=UTC), date(2026, 10, 25)),
        (datetime(2026, 10, 25, 1, 30, 0, tzinfo=UTC), date(2026, 10, 25)),  # 01:30 GMT, again
        # Clocks go forward at 01:00 GMT on 29 Mar 2026: midnight is 00:00 UTC.
        (datetime(2026, 3, 28, 23, 59, 59, tzinfo=UTC), date(2026, 3, 28)),
        (datetime(2026, 3, 29, 0, 0, 0, tzinfo=UTC), date(2026, 3, 29)),
        (datetime(2026, 3, 29, 1, 0, 0, tzinfo=UTC), date(2026, 3, 29)),  # 02:00 BST
    ],
)
def test_expiry_today_vs_tomorrow_in_london_around_a_clock_change(
    app: Flask, moment: datetime, today: date
) -> None:
    org = make_org()
    created = moment - timedelta(days=10)
    expires_today = make_user(org, created_at=created, expires_on=today)
    expires_tomorrow = make_user(org, created_at=created, expires_on=today + timedelta(days=1))
    with clock.frozen(moment):
        assert clock.today() == today
        report = nightly.run_sweep(now=clock.now(), today=clock.today())
    assert report.counts == {"expiry": 1, "inactivity": 0}
    assert state(expires_today) == (False, "expiry")
    assert state(expires_tomorrow) == (True, None)


def test_the_sql_agrees_with_rules_sweep_for_every_user(app: Flask) -> None:
    org = make_org()
    cases = [
        (timedelta(days=10), timedelta(days=5)),  # fine
        (timedelta(days=10), timedelta(0)),  # expires today
        (timedelta(days=10), -timedelta(days=1)),  # expired yesterday (already due)
        (rules.INACTIVITY + timedelta(seconds=1), timedelta(days=5)),  # inactive
        (rules.INACTIVITY + timedelta(days=3), timedelta(0)),  # both: expiry wins
        (rules.INACTIVITY, timedelta(days=1)),  # on the boundary
    ]
    users = [
        make_user(org, created_at=NIGHT - age, expires_on=clock.local_date(NIGHT) + expiry)
        for age, expiry in cases
    ]
    with clock.frozen(NIGHT):
        now, today = clock.now(), clock.today()
        expected = {u.id: rules.sweep(refresh(u).to_state(), now=now, today=today) for u in users}
        nightly.run_sweep(now=now, today=today, batch_size=2)
    for user in users:
        decision = expected[user.id]
        reason = decision.state.reason.value if decision.state.reason else None
        assert state(user) == (decision.state.enabled, reason), user.user_id


def test_batches_idempotence_and_audit_rows(app: Flask) -> None:
    org = make_org()
    other = make_org()
    inactive = [
        make_user(o, created_at=NIGHT - rules.INACTIVITY - timedelta(days=1))
        for o in (org, org, org, other, other)
    ]
    expired = [make_user(org, created_at=NIGHT - timedelta(days=3), expires_on=date(2026, 6, 1))]
    fine = make_user(org, created_at=NIGHT - timedelta(days=3))
    with clock.frozen(NIGHT):
        report = nightly.run_sweep(now=clock.now(), today=clock.today(), batch_size=2)
        assert report.counts == {"expiry": 1, "inactivity": 5}
        assert sorted(report.samples["inactivity"]) == sorted(u.user_id for u in inactive)

        events = system_disabled_events()
        assert len(events) == 6
        by_subject = {e.subject_id: e for e in events}
        for user, reason in [(u, "inactivity") for u in inactive] + [(expired[0], "expiry")]:
            event = by_subject[user.id]
            assert (event.actor, event.actor_id, event.reason) == ("system", None, reason)
            assert (event.subject, event.organisation_id) == (user.user_id, user.organisation_id)
            assert event.occurred_at == NIGHT
        assert state(fine) == (True, None)

        again = nightly.run_sweep(now=clock.now(), today=clock.today(), batch_size=2)
        assert again.counts == {"expiry": 0, "inactivity": 0}
        assert len(system_disabled_events()) == 6  # nothing recorded the second time
        with write_transaction(db.session):  # the in-transaction form agrees
            assert nightly.sweep(now=clock.now(), today=clock.today()) == again.counts


def test_preview_counts_what_the_sweep_then_does_and_changes_nothing(app: Flask) -> None:
    org = make_org()
    old = NIGHT - rules.INACTIVITY - timedelta(days=1)
    make_user(org, created_at=old)
    make_user(org, created_at=old, expires_on=date(2026, 6, 10))  # both: counted once, as expiry
    make_user(org, created_at=NIGHT - timedelta(days=1), expires_on=date(2026, 6, 15))
    make_user(org, created_at=NIGHT - timedelta(days=1))
    with clock.frozen(NIGHT):
        preview = nightly.preview(now=clock.now(), today=clock.today())
        assert preview.counts == {"expiry": 2, "inactivity": 1}
        assert preview.dry_run
        db.session.rollback()
        assert db.session.scalar(select(func.count()).where(User.enabled.is_(False))) == 0
        assert system_disabled_events() == []
        report = nightly.run_sweep(now=clock.now(), today=clock.today())
        assert report.counts == preview.counts


def test_users_already_without_access_are_left_alone(app: Flask) -> None:
    from tests.factories import lock_out
    from tests.factories import remove_access

    org = make_org()
    created = NIGHT - timedelta(days=1)
    with clock.frozen(created):
        locked = lock_out(make_user(org, created_at=created))
        removed = remove_access(make_user(org, created_at=created))
    with clock.frozen(NIGHT + rules.INACTIVITY * 2):
        assert nightly.run_sweep(now=clock.now(), today=clock.today()).total == 0
    assert state(locked) == (False, "lockout")
    fresh = refresh(removed)
    assert (fresh.enabled, fresh.active, fresh.disabled_reason) == (False, False, None)

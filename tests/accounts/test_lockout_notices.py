"""Lockout emails (R1): the user at its stored address at most once a day; the organisation's
Administrators with access batched, at most one email each per 15 minutes, so an attacker
locking many users cannot flood them.  Time is injected (``clock.frozen``); the emails are the
rows queued in the lockout's own transaction (``mail_queue``), and one test delivers them to the
real SMTP server.

Runs on SQLite and, when PORTAL_TEST_DATABASE_URL is set, on PostgreSQL.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlalchemy import select

from portal import background
from portal import clock
from portal.accounts import lockout_notices
from portal.accounts import management
from portal.accounts import rules
from portal.accounts.lockout_notices import LockoutAlert
from portal.accounts.models import Organisation
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.db import write_transaction
from portal.extensions import db
from portal.jobs import runner
from portal.mail_queue import QueuedMail
from tests.factories import login
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import refresh
from tests.mail_server import SmtpServer
from tests.mail_server import smtp_settings

WRONG = "not the right password at all"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def settings(
    request: pytest.FixtureRequest,
    settings: dict[str, Any],
    smtp_server: SmtpServer,
    tmp_path: Any,
) -> dict[str, Any]:
    """The suite's settings, sending mail to the real SMTP server."""
    return smtp_settings(request, settings, smtp_server, tmp_path / "outbox", "https://p.test")


@pytest.fixture(autouse=True)
def _background_jobs(app: Flask) -> Iterator[None]:
    yield
    background.shutdown(app)


def queued(purpose: str) -> list[QueuedMail]:
    db.session.rollback()
    return list(
        db.session.scalars(
            select(QueuedMail).where(QueuedMail.purpose == purpose).order_by(QueuedMail.id)
        )
    )


def admin_mails() -> Counter[str]:
    return Counter(m.to_address for m in queued(lockout_notices.ADMIN_PURPOSE))


def pending_alerts() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(LockoutAlert))


def lock(client: FlaskClient, user: User, at: datetime) -> None:
    """Five wrong passwords over HTTP at ``at`` (injected time)."""
    with clock.frozen(at):
        for _ in range(rules.LOCKOUT_AFTER):
            login(client, user.user_id, WRONG)
    assert refresh(user).disabled_reason == "lockout"


def reenable(user: User, at: datetime) -> None:
    fresh = refresh(user)
    with clock.frozen(at), write_transaction(db.session):
        management.set_enabled(None, fresh, enabled=True, now=at, today=clock.local_date(at))


def job(at: datetime) -> int:
    with clock.frozen(at):
        return lockout_notices.send_waiting(now=at)


def org_with_admins() -> tuple[Organisation, User, User]:
    with clock.frozen(T0 - timedelta(days=1)):
        org = make_org()
        one = make_user(org, profile=Profile.ADMINISTRATOR, email="one@acme.example")
        two = make_user(org, profile=Profile.ADMINISTRATOR, email="two@acme.example")
    return org, one, two


def handlers(org: Organisation, count: int) -> list[User]:
    with clock.frozen(T0 - timedelta(days=1)):
        return [make_user(org) for _ in range(count)]


# --- the user's own notice ----------------------------------------------------------------


def test_the_user_is_told_at_most_once_a_day(client: FlaskClient) -> None:
    org = make_org()
    with clock.frozen(T0 - timedelta(days=1)):
        user = make_user(org, email="victim@acme.example")
    lock(client, user, T0)
    [notice] = queued(lockout_notices.USER_PURPOSE)
    assert notice.to_address == "victim@acme.example"
    assert user.user_id in notice.body
    assert "Ask one of your organisation's Administrators" in notice.body

    for hours in (1, 12, 23):  # locked again and again within the day: no second notice
        at = T0 + timedelta(hours=hours)
        reenable(user, at)
        lock(client, user, at + MINUTE)
    assert len(queued(lockout_notices.USER_PURPOSE)) == 1

    later = T0 + rules.USER_LOCKOUT_NOTICE_EVERY + MINUTE
    reenable(user, later)
    lock(client, user, later + MINUTE)
    assert len(queued(lockout_notices.USER_PURPOSE)) == 2


def test_a_locked_administrator_is_told_how_to_reset_and_is_not_alerted_about_itself(
    client: FlaskClient,
) -> None:
    _org, one, _two = org_with_admins()
    lock(client, one, T0)
    [notice] = queued(lockout_notices.USER_PURPOSE)
    assert notice.to_address == "one@acme.example"
    assert "Forgotten your password?" in notice.body
    assert admin_mails() == Counter({"two@acme.example": 1})  # never about itself


# --- the Administrators' batched emails -----------------------------------------------------


def test_administrators_get_one_email_per_window_listing_what_waited(
    client: FlaskClient,
) -> None:
    org, _one, _two = org_with_admins()
    first, second, third, fourth = handlers(org, 4)

    lock(client, first, T0)  # the window is open: told at once
    assert admin_mails() == Counter({"one@acme.example": 1, "two@acme.example": 1})
    assert first.user_id in queued(lockout_notices.ADMIN_PURPOSE)[0].body

    lock(client, second, T0 + 5 * MINUTE)  # within the window: they wait
    lock(client, third, T0 + 6 * MINUTE)
    assert job(T0 + 14 * MINUTE) == 0
    assert sum(admin_mails().values()) == 2
    assert pending_alerts() == 4

    assert job(T0 + 15 * MINUTE) == 2  # the window closed: one email each, listing both
    assert admin_mails() == Counter({"one@acme.example": 2, "two@acme.example": 2})
    last = queued(lockout_notices.ADMIN_PURPOSE)[-1]
    assert second.user_id in last.body
    assert third.user_id in last.body
    assert first.user_id not in last.body
    assert "2 users of your organisation are locked out" in last.subject
    assert pending_alerts() == 0
    assert job(T0 + 16 * MINUTE) == 0  # nothing left: nothing sent

    lock(client, fourth, T0 + 20 * MINUTE)  # the window restarted at the last email (T0+15)
    assert sum(admin_mails().values()) == 4
    assert job(T0 + 29 * MINUTE) == 0
    assert job(T0 + 30 * MINUTE) == 2
    assert fourth.user_id in queued(lockout_notices.ADMIN_PURPOSE)[-1].body


def test_an_attacker_locking_many_users_cannot_flood_the_administrators(
    client: FlaskClient,
) -> None:
    """20 users locked over 40 minutes, one every 2 minutes, and the job every minute for an
    hour: each Administrator gets at most one email per 15 minutes, and every lockout is in
    one of them."""
    org, _one, _two = org_with_admins()
    victims = handlers(org, 20)
    for minute in range(60):
        at = T0 + minute * MINUTE
        if minute % 2 == 0 and minute < 40:
            lock(client, victims[minute // 2], at)
        job(at)
    mails = queued(lockout_notices.ADMIN_PURPOSE)
    for address in ("one@acme.example", "two@acme.example"):
        mine = [m for m in mails if m.to_address == address]
        times = [m.created_at for m in mine]
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        assert all(gap >= rules.ADMIN_LOCKOUT_ALERT_EVERY for gap in gaps), gaps
        assert len(mine) == 4  # at T0, T0+15, T0+30 and T0+45 minutes: not 20
        told = "".join(m.body for m in mine)
        assert all(victim.user_id in told for victim in victims)
    assert pending_alerts() == 0


def test_an_administrator_who_lost_access_is_not_told(client: FlaskClient) -> None:
    org, one, two = org_with_admins()
    first, second = handlers(org, 2)
    lock(client, first, T0)
    lock(client, second, T0 + MINUTE)  # waits for the window
    fresh_two, fresh_one = refresh(two), refresh(one)
    with clock.frozen(T0 + 2 * MINUTE), write_transaction(db.session):
        management.set_enabled(
            fresh_one, fresh_two, enabled=False, now=clock.now(), today=clock.today()
        )
    assert job(T0 + 15 * MINUTE) == 1
    assert admin_mails() == Counter({"one@acme.example": 2, "two@acme.example": 1})
    assert pending_alerts() == 0  # the alert for the removed Administrator was dropped


def test_the_scheduler_job_delivers_to_the_real_smtp_server(
    app: Flask, client: FlaskClient, smtp_server: SmtpServer
) -> None:
    org, _one, _two = org_with_admins()
    first, second = handlers(org, 2)
    lock(client, first, T0)
    lock(client, second, T0 + MINUTE)
    background.wait_idle(app)
    before = len(smtp_server.messages)
    with clock.frozen(T0 + 15 * MINUTE):
        assert runner.send_lockout_alerts(app) == 2
    background.wait_idle(app)
    messages = smtp_server.wait_for(before + 2)
    assert sorted(m["To"] for m in messages[before:]) == ["one@acme.example", "two@acme.example"]
    assert all(second.user_id in m.get_content() for m in messages[before:])

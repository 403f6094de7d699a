"""The audit's request facts (docs/architecture.md §2): the web layer passes the IP address and
user agent; ``portal/audit/record.py`` never reads the request."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal import clock
from portal.audit import kinds
from portal.audit.models import AuditEvent
from portal.audit.record import RequestFacts
from portal.audit.record import current_facts
from portal.audit.record import record
from portal.db import write_transaction
from portal.extensions import db
from tests.factories import login
from tests.factories import make_org
from tests.factories import make_user


def test_an_event_caused_by_a_request_keeps_its_ip_and_user_agent(client: FlaskClient) -> None:
    user = make_user(make_org())
    client.post(
        "/portal/login",
        data={"user_id": user.user_id, "password": "wrong password"},
        environ_base={"REMOTE_ADDR": "10.9.8.7"},
        headers={"User-Agent": "facts-test/1.0"},
    )
    event = db.session.scalars(
        select(AuditEvent).where(
            AuditEvent.subject_id == user.id, AuditEvent.kind == "login_failed"
        )
    ).one()
    assert (event.kind, event.ip, event.user_agent) == (
        "login_failed",
        "10.9.8.7",
        "facts-test/1.0",
    )


def test_after_the_request_no_facts_linger(client: FlaskClient) -> None:
    user = make_user(make_org())
    assert login(client, user.user_id).status_code == 302
    assert current_facts() == RequestFacts()


def test_outside_a_request_an_event_has_no_facts_unless_given(app: Flask) -> None:
    with app.app_context(), write_transaction(db.session):
        bare = record(kinds.SESSIONS_ENDED, actor=None, subject=None, now=clock.now())
        given = record(
            kinds.SESSIONS_ENDED,
            actor=None,
            subject=None,
            now=clock.now(),
            facts=RequestFacts.of("192.0.2.1" + "0" * 100, "agent"),
        )
    assert (bare.ip, bare.user_agent) == (None, None)
    assert (len(given.ip or ""), given.user_agent) == (64, "agent")

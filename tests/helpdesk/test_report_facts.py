"""The facts the report counts, kept on each request as they happen (report_facts): the code
an error text names, and the working time to the first reply and to resolution, with the time
waiting on the requester left out."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

import pytest

from portal.db import write_transaction
from portal.extensions import db
from portal.helpdesk import report_facts
from portal.helpdesk.models import EventKind
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.timeline import add_event
from tests.helpdesk_factories import make_request


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("It says LOGIN-06", "LOGIN-06"),
        ("login 3 and then RESET-02", "LOGIN-03"),
        ("YOUR USER ID HAS REACHED ITS EXPIRY DATE", "LOGIN-06"),
        # The longer message wins over the shorter one it contains.
        (
            "Your User ID is locked because the password was entered incorrectly five times. "
            "Ask your Administrator to re-enable it.",
            "LOGIN-03",
        ),
        ("my account is locked", ""),
        ("", ""),
        (None, None),
    ],
)
def test_the_code_an_error_text_names(text: str | None, code: str | None) -> None:
    assert report_facts.code_of(text) == code


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def _refresh(req: HelpdeskRequest) -> HelpdeskRequest:
    db.session.expire_all()
    found = db.session.get(HelpdeskRequest, req.id)
    assert found is not None
    return found


def test_only_the_first_reply_and_resolution_count_and_waiting_is_paused(app: object) -> None:
    req = make_request(error_message="LOGIN-07 shown", created_at=at(23, 9))  # Monday
    assert _refresh(req).error_code == "LOGIN-07"
    with write_transaction(db.session):
        add_event(req, EventKind.NOTE, None, at(23, 9, 10), details="internal")
        add_event(req, EventKind.REPLY, None, at(23, 9, 30), details="first")
        add_event(req, EventKind.REPLY, None, at(23, 15), details="second")
        add_event(
            req, EventKind.STATUS_CHANGED, None, at(23, 10), from_status="new", to_status="waiting"
        )
    with write_transaction(db.session):
        # Resolved straight from waiting on Tuesday 11:00: the wait ends there.
        add_event(
            req,
            EventKind.STATUS_CHANGED,
            None,
            at(24, 11),
            from_status="waiting",
            to_status="resolved",
        )
    req = _refresh(req)
    assert req.first_reply_seconds == 30 * 60
    assert req.resolve_seconds == 60 * 60  # 09:00-10:00 worked, then waiting to the end
    with write_transaction(db.session):
        add_event(
            req, EventKind.STATUS_CHANGED, None, at(25, 9), from_status="resolved", to_status="new"
        )
        add_event(
            req,
            EventKind.STATUS_CHANGED,
            None,
            at(25, 12),
            from_status="new",
            to_status="resolved",
        )
    assert _refresh(req).resolve_seconds == 60 * 60  # the first resolution stays

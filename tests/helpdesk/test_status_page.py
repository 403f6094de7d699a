"""The requester's status page (docs/rules.md §5 "the loop closes"; issue 14 item 3): the link in
the acknowledgement opens that request only, moves into the session, expires 90 days after the
request is resolved, never shows internal notes, and takes added information."""

from __future__ import annotations

import html
import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal import clock
from portal.accounts.models import Profile
from portal.db import write_transaction
from portal.extensions import db
from portal.helpdesk import actions
from portal.helpdesk import status_link
from portal.helpdesk.models import EventKind
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import Status
from portal.log_redaction import redact_tokens
from portal.mail_queue import QueuedMail
from tests.factories import make_user
from tests.helpdesk_factories import make_request
from tests.helpers import sign_in_as
from tests.helpers import timeline
from tests.mail_server import SmtpServer

from .conftest import post_contact
from .conftest import resend_data
from .conftest import settle

LINK = re.compile(r"https://portal\.example\.test(/helpdesk/status/[A-Za-z0-9_-]+-[A-Za-z0-9_-]+)")
T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def text_of(response: object) -> str:
    return html.unescape(response.get_data(as_text=True))  # type: ignore[attr-defined]


def link_path(req: HelpdeskRequest) -> str:
    """The status link's path, as an email would carry it (the salt made if missing)."""
    with write_transaction(db.session):
        found = db.session.get(HelpdeskRequest, req.id)
        assert found is not None
        token = status_link.token(found)
    return f"/helpdesk/status/{token}"


def open_status(client: FlaskClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    assert response.headers["Location"] == "/helpdesk/status"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    page = client.get("/helpdesk/status")
    assert page.status_code == 200
    return text_of(page)


def stored(req: HelpdeskRequest) -> tuple[str, datetime | None]:
    """The request's status and resolved_at as the database has them now."""
    db.session.rollback()
    row = db.session.execute(
        select(HelpdeskRequest.status, HelpdeskRequest.resolved_at).where(
            HelpdeskRequest.id == req.id
        )
    ).one()
    return row[0], row[1]


def staff_do(fn: object, *args: object, **kwargs: object) -> None:
    with write_transaction(db.session):
        fn(*args, **kwargs)  # type: ignore[operator]


# --- the link in the acknowledgement ---------------------------------------------------------


def test_the_acknowledgement_link_opens_the_request_without_the_token_in_the_url(
    app: Flask, client: FlaskClient, smtp_server: SmtpServer
) -> None:
    assert post_contact(client).status_code == 302
    settle(app)
    [ack] = smtp_server.messages
    found = LINK.search(ack.get_content())
    assert found is not None
    req = db.session.scalars(select(HelpdeskRequest)).one()
    fresh = app.test_client()
    response = fresh.get(found.group(1))
    assert response.status_code == 303
    assert response.headers["Location"] == "/helpdesk/status"
    token = found.group(1).rsplit("/", 1)[1]
    with fresh.session_transaction() as sess:
        assert token not in repr(dict(sess))  # only its digest
    page = fresh.get("/helpdesk/status")
    body = text_of(page)
    assert page.status_code == 200
    assert req.reference in body
    assert "New" in body
    assert "Since this morning." in body  # what the requester sent
    assert page.headers["X-Robots-Tag"] == "noindex, nofollow"
    assert '<meta name="robots" content="noindex, nofollow">' in body
    assert token not in body
    # The log never holds the token.
    assert redact_tokens(f"GET {found.group(1)} HTTP/1.1") == (
        "GET /helpdesk/status/[token] HTTP/1.1"
    )
    assert redact_tokens("GET /helpdesk/status HTTP/1.1") == "GET /helpdesk/status HTTP/1.1"


def test_resend_admin_user_id_gets_a_reference_and_a_status_link(
    app: Flask, client: FlaskClient, smtp_server: SmtpServer
) -> None:
    response = client.post("/helpdesk/resend-admin-user-id", data=resend_data())
    assert response.status_code == 302
    page = client.get(response.headers["Location"])
    req = db.session.scalars(select(HelpdeskRequest)).one()
    assert f'id="reference">{req.reference}<' in page.get_data(as_text=True)
    settle(app)
    [ack] = smtp_server.messages
    assert ack["To"] == "ada@example.com"
    found = LINK.search(ack.get_content())
    assert found is not None
    assert req.reference in open_status(app.test_client(), found.group(1))


def test_the_resend_confirmation_needs_a_sent_form(client: FlaskClient) -> None:
    response = client.get("/helpdesk/resend-admin-user-id/sent")
    assert response.status_code == 302


# --- one request only --------------------------------------------------------------------------


def test_a_token_cannot_show_another_request(client: FlaskClient) -> None:
    mine = make_request(details="mine")
    other = make_request(details="someone else's")
    path = link_path(mine)
    other_path = link_path(other)
    token = path.rsplit("/", 1)[1]
    mac = token.split("-", 1)[1]
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    for bad in (
        f"/helpdesk/status/{mine.id}-{flipped}",  # tampered
        f"/helpdesk/status/{other.id}-{mac}",  # my MAC, another id
        f"/helpdesk/status/{token}x",
        f"/helpdesk/status/{mine.id}",
        "/helpdesk/status/99999999999999-" + mac,
    ):
        response = client.get(bad)
        assert response.status_code == 404, bad
        assert "This link is not recognised" in text_of(response)
        assert client.get("/helpdesk/status").status_code == 404
    assert "someone else" not in open_status(client, path)
    assert "someone else" in open_status(client, other_path)
    assert "someone else" not in open_status(client, path)


def test_a_changed_salt_revokes_the_link_and_the_open_page(client: FlaskClient) -> None:
    req = make_request()
    path = link_path(req)
    open_status(client, path)
    with write_transaction(db.session):
        found = db.session.get(HelpdeskRequest, req.id)
        assert found is not None
        status_link.revoke(found)
    assert client.get("/helpdesk/status").status_code == 404  # the session's page too
    assert client.get(path).status_code == 404
    assert req.reference in open_status(client, link_path(req))  # the new link works


def test_no_session_no_page(client: FlaskClient) -> None:
    response = client.get("/helpdesk/status")
    assert response.status_code == 404
    assert response.headers["X-Robots-Tag"] == "noindex, nofollow"


# --- what the page shows -----------------------------------------------------------------------


def test_the_page_never_shows_internal_notes_or_staff(app: Flask, client: FlaskClient) -> None:
    from portal.helpdesk import replies

    staff = make_user(profile=Profile.HELPDESK, user_id="hd.staffer")
    req = make_request(details="my details")
    staff_do(actions.add_note, req.id, "INTERNAL: caller sounds odd", actor=staff, now=clock.now())
    staff_do(
        replies.reply, req.id, "Please try again now.", then=None, actor=staff, now=clock.now()
    )
    staff_do(actions.refer, req.id, actor=staff, now=clock.now(), note="REFERRAL NOTE")
    body = open_status(client, link_path(req))
    assert "Please try again now." in body
    assert "INTERNAL" not in body
    assert "REFERRAL NOTE" not in body
    assert "hd.staffer" not in body
    assert "Referred to Portal team" in body  # the status label, in words
    assert "my details" in body


# --- expiry ------------------------------------------------------------------------------------


def test_the_link_expires_90_days_after_the_request_is_resolved(client: FlaskClient) -> None:
    staff = make_user(profile=Profile.HELPDESK)
    with clock.frozen(T0):
        req = make_request()
        path = link_path(req)
        staff_do(actions.set_status, req.id, Status.RESOLVED, actor=staff, now=clock.now())
    with clock.frozen(T0 + timedelta(days=90) - timedelta(seconds=1)):
        assert "Resolved" in open_status(client, path)
    with clock.frozen(T0 + timedelta(days=90)):
        page = client.get("/helpdesk/status")  # the session's page closes too
        assert page.status_code == 410
        response = client.get(path)
        assert response.status_code == 410
        body = text_of(response)
        assert "This link has expired" in body
        assert "more than 90 days ago" in body
        assert "/helpdesk/contact" in body


def test_an_open_request_link_does_not_expire(client: FlaskClient) -> None:
    with clock.frozen(T0):
        req = make_request()
        path = link_path(req)
    with clock.frozen(T0 + timedelta(days=400)):
        assert req.reference in open_status(client, path)


# --- adding information ------------------------------------------------------------------------


def _add(client: FlaskClient, text: str) -> object:
    return client.post("/helpdesk/status", data={"information": text})


def test_adding_information_moves_waiting_back_to_in_progress(client: FlaskClient) -> None:
    staff = make_user(profile=Profile.HELPDESK)
    req = make_request(status=Status.WAITING.value)
    open_status(client, link_path(req))
    response = _add(client, "Here is the screenshot you asked for: none, sorry.")
    assert response.status_code == 303  # type: ignore[attr-defined]
    assert stored(req) == (Status.IN_PROGRESS.value, None)
    events = timeline(req)
    added = [e for e in events if e.kind == EventKind.REQUESTER_ADDED.value]
    assert [e.details for e in added] == ["Here is the screenshot you asked for: none, sorry."]
    assert added[0].actor_id is None
    changed = events[-1]
    assert (changed.kind, changed.from_status, changed.to_status) == (
        "status_changed",
        "waiting",
        "in_progress",
    )
    body = text_of(client.get("/helpdesk/status"))
    assert "Here is the screenshot you asked for" in body
    assert "In progress" in body
    assert staff.user_id not in body


def test_an_empty_addition_is_refused(client: FlaskClient) -> None:
    req = make_request()
    open_status(client, link_path(req))
    response = _add(client, "   ")
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert "Write what you want to add" in text_of(response)


def test_information_reopens_a_request_resolved_within_30_days(client: FlaskClient) -> None:
    staff = make_user(profile=Profile.HELPDESK)
    with clock.frozen(T0):
        req = make_request()
        path = link_path(req)
        staff_do(actions.set_status, req.id, Status.RESOLVED, actor=staff, now=clock.now())
    with clock.frozen(T0 + timedelta(days=30) - timedelta(minutes=1)):
        open_status(client, path)
        assert _add(client, "Still broken.").status_code == 303  # type: ignore[attr-defined]
    assert stored(req) == (Status.IN_PROGRESS.value, None)


def test_after_30_days_a_new_request_is_asked_for(client: FlaskClient) -> None:
    staff = make_user(profile=Profile.HELPDESK)
    with clock.frozen(T0):
        req = make_request()
        path = link_path(req)
        staff_do(actions.set_status, req.id, Status.RESOLVED, actor=staff, now=clock.now())
    with clock.frozen(T0 + timedelta(days=30)):
        body = open_status(client, path)
        assert "cannot be reopened" in body
        assert 'name="information"' not in body
        events_before = len(timeline(req))
        response = _add(client, "Still broken.")
        assert response.status_code == 409  # type: ignore[attr-defined]
        assert "Send a new request" in text_of(response)
    assert len(timeline(req)) == events_before
    assert stored(req) == (Status.RESOLVED.value, T0)


# --- abuse -------------------------------------------------------------------------------------


@pytest.mark.config(WTF_CSRF_ENABLED=True)
def test_adding_information_needs_the_csrf_token(client: FlaskClient) -> None:
    req = make_request()
    open_status(client, link_path(req))
    events_before = len(timeline(req))
    assert _add(client, "no token").status_code == 400  # type: ignore[attr-defined]
    assert len(timeline(req)) == events_before


@pytest.mark.config(RATELIMIT_ENABLED=True, PORTAL_HELPDESK_STATUS_RATE_LIMIT="3 per minute")
def test_the_status_link_is_rate_limited(client: FlaskClient) -> None:
    codes = [client.get("/helpdesk/status/1-" + "A" * 43).status_code for _ in range(4)]
    assert codes == [404, 404, 404, 429]


def test_staff_are_told_the_requester_resolved_nothing(client: FlaskClient) -> None:
    """Sanity: a Helpdesk user signed in gets nothing extra from the status page."""
    sign_in_as(client, Profile.HELPDESK)
    assert client.get("/helpdesk/status").status_code == 404
    assert db.session.scalars(select(QueuedMail)).all() == []

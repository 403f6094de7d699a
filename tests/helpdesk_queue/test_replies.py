"""Replies from the queue: a guide link, and Send User ID (stored address only, daily cap),
through the mail queue to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal import background
from portal import clock
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.extensions import db
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import RequestKind
from portal.mail_queue import QueuedMail
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import remove_access
from tests.helpdesk_factories import make_request
from tests.helpdesk_queue.conftest import sign_in_as
from tests.helpers import timeline
from tests.mail_server import SmtpServer

BASE_URL = "https://portal.example.org"


@pytest.fixture
def smtp(app: Flask, smtp_server: SmtpServer) -> SmtpServer:
    app.config.update(
        PORTAL_MAIL_SERVER=smtp_server.host,
        PORTAL_MAIL_PORT=smtp_server.port,
        PORTAL_BASE_URL=BASE_URL,
    )
    return smtp_server


@pytest.fixture(autouse=True)
def _mail_done(app: Flask, smtp_server: SmtpServer) -> Iterator[None]:
    """No background delivery outlives its test, nor the SMTP server it talks to (this
    fixture needs the server, so it ends first)."""
    yield
    background.wait_idle(app)


def queued() -> list[QueuedMail]:
    db.session.rollback()
    return list(db.session.scalars(select(QueuedMail).order_by(QueuedMail.id)))


# --- reply with a guide link -----------------------------------------------------------------


def test_the_guide_choices_are_the_troubleshooting_entries_and_the_index(
    client: FlaskClient, staff: User
) -> None:
    from portal import messages as codes

    req = make_request(error_message="something odd happened")
    page = client.get(f"/helpdesk/requests/{req.id}").get_data(as_text=True)
    assert '<option selected value="index">' in page  # no code quoted: all guides
    for message in codes.MESSAGES:
        assert f'<option value="{message.code}">' in page
        # Short labels keep the select inside the page (code and the start of the text).
        label = page.split(f'<option value="{message.code}">', 1)[1].split("</option>", 1)[0]
        assert label.startswith(message.code)
        assert len(label) <= 60


def test_the_quoted_code_is_preselected(client: FlaskClient, staff: User) -> None:
    req = make_request(error_message="It said LOGIN-06 when I tried")
    page = client.get(f"/helpdesk/requests/{req.id}").get_data(as_text=True)
    assert '<option selected value="LOGIN-06">' in page
    pasted = make_request(error_message="The User ID or password is incorrect.")
    page = client.get(f"/helpdesk/requests/{pasted.id}").get_data(as_text=True)
    code = codes_for("The User ID or password is incorrect.")
    assert f'<option selected value="{code}">' in page


def codes_for(text: str) -> str:
    from portal import messages as codes

    found = codes.for_text(text)
    assert found is not None
    return found.code


def test_reply_with_a_guide_link_reaches_the_requester(
    app: Flask, client: FlaskClient, staff: User, smtp: SmtpServer
) -> None:
    req = make_request(email="Ada@Example.com")
    response = client.post(
        f"/helpdesk/requests/{req.id}/guide-reply",
        data={"section": "LOGIN-02"},
    )
    assert response.status_code == 302
    background.wait_idle(app)
    [message] = smtp.wait_for(1)
    assert smtp.recipients == ["Ada@Example.com"]
    body = message.get_content()
    assert f"{BASE_URL}/guides/troubleshooting#LOGIN-02" in body
    assert "localhost" not in body  # the request's host: never used for links
    assert req.reference in message["Subject"]
    last = timeline(req)[-1]
    assert last.kind == "guide_reply"
    assert f"{BASE_URL}/guides/troubleshooting#LOGIN-02" in (last.details or "")
    page = client.get(f"/helpdesk/requests/{req.id}").get_data(as_text=True)
    assert "Replied with a guide link" in page
    assert [m.status for m in queued()] == ["sent"]


def test_reply_with_the_guides_index(
    app: Flask, client: FlaskClient, staff: User, smtp: SmtpServer
) -> None:
    req = make_request()
    client.post(f"/helpdesk/requests/{req.id}/guide-reply", data={"section": "index"})
    background.wait_idle(app)
    [message] = smtp.wait_for(1)
    assert f"{BASE_URL}/guides/\n" in message.get_content()


@pytest.mark.parametrize("bad", ["", "LOGIN-99", "index\r\nBcc: x@example.com"])
def test_an_unknown_guide_section_is_refused(client: FlaskClient, staff: User, bad: str) -> None:
    req = make_request()
    response = client.post(f"/helpdesk/requests/{req.id}/guide-reply", data={"section": bad})
    assert response.status_code == 422
    assert "There is a problem" in response.get_data(as_text=True)
    assert queued() == []
    assert [e.kind for e in timeline(req)] == ["created"]


# --- Send User ID -------------------------------------------------------------------------------


def _resend(org_name: str, email: str) -> HelpdeskRequest:
    return make_request(kind=RequestKind.RESEND_USER_ID, organisation_name=org_name, email=email)


def test_send_user_id_goes_to_the_stored_address_only(
    app: Flask, client: FlaskClient, staff: User, smtp: SmtpServer
) -> None:
    org = make_org("Acme Claims Ltd")
    admin = make_user(
        org, user_id="Acme.Admin", profile=Profile.ADMINISTRATOR, email="Admin.Person@Acme.example"
    )
    make_user(org, user_id="acme.handler", email="admin.person@acme.example")  # not an admin
    req = _resend("  ACME claims ltd ", "ADMIN.PERSON@acme.EXAMPLE")
    page = client.get(f"/helpdesk/requests/{req.id}").get_data(as_text=True)
    assert "Send User ID" in page
    response = client.post(f"/helpdesk/requests/{req.id}/send-user-id")
    assert response.status_code == 302
    background.wait_idle(app)
    [message] = smtp.wait_for(1)
    assert smtp.recipients == [admin.email]  # the stored address, as stored
    assert admin.email.startswith("Admin.Person@")
    assert "Acme.Admin" in message.get_content()
    assert "acme.handler" not in message.get_content()
    page = client.get(f"/helpdesk/requests/{req.id}").get_data(as_text=True)
    assert "User ID Acme.Admin emailed to the stored address." in page
    last = timeline(req)[-1]
    assert (last.kind, last.actor) == ("user_id_sent", staff.user_id)
    assert [m.to_address for m in queued()] == [admin.email]


def test_a_claims_handler_user_id_is_never_sent(
    client: FlaskClient, staff: User, smtp: SmtpServer
) -> None:
    org = make_org("Handlers Inc")
    make_user(org, user_id="only.handler", email="h@handlers.example")
    req = _resend("Handlers Inc", "h@handlers.example")
    client.post(f"/helpdesk/requests/{req.id}/send-user-id")
    assert queued() == []
    assert timeline(req)[-1].kind == "user_id_not_matched"


def test_an_unknown_email_sends_nothing_and_says_so(
    client: FlaskClient, staff: User, smtp: SmtpServer
) -> None:
    org = make_org("Acme Claims")
    make_user(org, profile=Profile.ADMINISTRATOR, email="real@acme.example")
    req = _resend("Acme Claims", "attacker@evil.example")
    response = client.post(f"/helpdesk/requests/{req.id}/send-user-id", follow_redirects=True)
    body = response.get_data(as_text=True)
    assert "Nothing sent: no Administrator matches this organisation and stored email." in body
    assert "User ID not sent" in body  # the timeline
    assert queued() == []
    assert timeline(req)[-1].kind == "user_id_not_matched"
    # The right email with another organisation's name does not match either.
    other = _resend("Another Org", "real@acme.example")
    client.post(f"/helpdesk/requests/{other.id}/send-user-id")
    assert queued() == []


def test_a_unicode_lookalike_email_does_not_match(
    client: FlaskClient, staff: User, smtp: SmtpServer
) -> None:
    org = make_org("Acme Claims")
    make_user(org, profile=Profile.ADMINISTRATOR, email="mike@acme.example")
    req = _resend("Acme Claims", "mıke@acme.example")  # dotless ı
    client.post(f"/helpdesk/requests/{req.id}/send-user-id")
    assert queued() == []


def test_an_access_removed_administrator_gets_nothing(
    client: FlaskClient, staff: User, smtp: SmtpServer
) -> None:
    org = make_org("Acme Claims")
    make_user(org, profile=Profile.ADMINISTRATOR)  # the firm keeps an Administrator
    gone = make_user(org, profile=Profile.ADMINISTRATOR, email="gone@acme.example")
    remove_access(gone)
    req = _resend("Acme Claims", "gone@acme.example")
    client.post(f"/helpdesk/requests/{req.id}/send-user-id")
    assert queued() == []
    assert "access was removed" in (timeline(req)[-1].details or "")


@pytest.mark.config(PORTAL_HELPDESK_USER_ID_PER_DAY=2)
def test_at_most_n_per_account_per_day(app: Flask, client: FlaskClient, smtp: SmtpServer) -> None:
    org = make_org("Acme Claims")
    admin = make_user(org, profile=Profile.ADMINISTRATOR, email="boss@acme.example")
    reqs = [_resend("Acme Claims", "boss@acme.example") for _ in range(3)]
    sign_in_as(client, Profile.HELPDESK)
    for req in reqs[:2]:
        client.post(f"/helpdesk/requests/{req.id}/send-user-id")
    capped = client.post(f"/helpdesk/requests/{reqs[2].id}/send-user-id", follow_redirects=True)
    assert f"Nothing sent: {admin.user_id} already had the daily number" in capped.get_data(
        as_text=True
    )
    assert "daily limit" in (timeline(reqs[2])[-1].details or "")
    background.wait_idle(app)
    smtp.wait_for(2)
    assert len(queued()) == 2
    # A day later the account may have its User ID again.
    clock.advance(timedelta(days=1, minutes=1))
    sign_in_as(client, Profile.HELPDESK)
    client.post(f"/helpdesk/requests/{reqs[2].id}/send-user-id")
    assert len(queued()) == 3


def test_send_user_id_is_not_offered_on_contact_requests(client: FlaskClient, staff: User) -> None:
    req = make_request()
    assert "Send User ID" not in client.get(f"/helpdesk/requests/{req.id}").get_data(as_text=True)
    response = client.post(f"/helpdesk/requests/{req.id}/send-user-id", follow_redirects=True)
    assert "only for Resend Admin User ID requests" in response.get_data(as_text=True)
    assert queued() == []


@pytest.mark.config(PORTAL_HELPDESK_USER_ID_PER_DAY=1)
def test_the_cap_holds_under_concurrent_sends(app: Flask, smtp: SmtpServer) -> None:
    """Two staff press Send User ID at the same moment on two requests for one account: the
    account's lock orders them, and exactly one email goes (SQLite: BEGIN IMMEDIATE)."""
    import threading

    org = make_org("Acme Claims")
    make_user(org, profile=Profile.ADMINISTRATOR, email="boss@acme.example")
    reqs = [_resend("Acme Claims", "boss@acme.example") for _ in range(2)]
    clients = [app.test_client() for _ in reqs]
    for c in clients:
        sign_in_as(c, Profile.HELPDESK)
    db.session.rollback()
    barrier = threading.Barrier(len(clients))
    statuses: list[int] = []

    def press(c: FlaskClient, pk: int) -> None:
        barrier.wait()
        statuses.append(c.post(f"/helpdesk/requests/{pk}/send-user-id").status_code)

    threads = [
        threading.Thread(target=press, args=(c, r.id)) for c, r in zip(clients, reqs, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert statuses == [302, 302]
    assert len(queued()) == 1
    outcomes = sorted(timeline(r)[-1].kind for r in reqs)
    assert outcomes == ["user_id_not_matched", "user_id_sent"]

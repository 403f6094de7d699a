"""Staff replies to the requester over HTTP (docs/rules.md §5 "the loop closes"; issue 14 items 2
and 4): the reply is kept in the mail queue with the status link and on the timeline, a guide
entry fills the box (with and without JavaScript), the page says when the typed address is not
the account's, and resolving tells the requester."""

from __future__ import annotations

import html
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal import messages
from portal.accounts.models import Profile
from portal.extensions import db
from portal.helpdesk.models import EventKind
from portal.helpdesk.models import HelpdeskRequest
from portal.mail_queue import QueuedMail
from tests.factories import make_org
from tests.factories import make_user
from tests.helpdesk_factories import make_request
from tests.helpers import audit_events
from tests.helpers import csrf_sign_in
from tests.helpers import sign_in_as
from tests.helpers import timeline
from tests.mail_server import SmtpServer

from .conftest import settle

LINK = re.compile(r"https://portal\.example\.test/helpdesk/status/\d+-[A-Za-z0-9_-]{43}")


def text_of(response: object) -> str:
    return html.unescape(response.get_data(as_text=True))  # type: ignore[attr-defined]


def queued(purpose: str) -> list[QueuedMail]:
    db.session.rollback()
    return list(
        db.session.scalars(
            select(QueuedMail).where(QueuedMail.purpose == purpose).order_by(QueuedMail.id)
        )
    )


def status_of(req: HelpdeskRequest) -> str:
    db.session.rollback()
    status = db.session.scalar(select(HelpdeskRequest.status).where(HelpdeskRequest.id == req.id))
    assert status is not None
    return status


def test_a_reply_is_queued_kept_on_the_timeline_and_sent(
    app: Flask, client: FlaskClient, smtp_server: SmtpServer
) -> None:
    staff = sign_in_as(client, Profile.HELPDESK)
    req = make_request(email="typed@example.com")
    response = client.post(
        f"/helpdesk/requests/{req.id}/reply",
        data={"text": "Please clear your browser's cache and try again.", "then": "waiting"},
    )
    assert response.status_code == 302
    [row] = queued("helpdesk.reply")
    assert row.to_address == "typed@example.com"
    assert row.ref == req.reference
    assert "Please clear your browser's cache and try again." in row.body or row.sealed
    events = [e for e in timeline(req) if e.kind == EventKind.REPLY.value]
    assert [(e.details, e.actor_id) for e in events] == [
        ("Please clear your browser's cache and try again.", staff.id)
    ]
    assert status_of(req) == "waiting"
    settle(app)
    [sent] = [m for m in smtp_server.messages if "a reply" in str(m["Subject"])]
    body = sent.get_content()
    assert sent["To"] == "typed@example.com"
    assert "Please clear your browser's cache and try again." in body
    assert "waiting for your answer" in body
    assert LINK.search(body)
    assert staff.user_id not in body


def test_a_reply_to_a_new_request_puts_it_in_progress(client: FlaskClient) -> None:
    sign_in_as(client, Profile.HELPDESK)
    req = make_request()
    client.post(f"/helpdesk/requests/{req.id}/reply", data={"text": "On it.", "then": ""})
    assert status_of(req) == "in_progress"


def test_an_empty_reply_is_refused_and_nothing_is_sent(client: FlaskClient) -> None:
    sign_in_as(client, Profile.HELPDESK)
    req = make_request()
    response = client.post(f"/helpdesk/requests/{req.id}/reply", data={"text": "  ", "then": ""})
    assert response.status_code == 422
    assert "Write the reply first" in text_of(response)
    assert queued("helpdesk.reply") == []
    assert status_of(req) == "new"


def test_a_guide_entry_is_a_starting_point_with_and_without_javascript(
    client: FlaskClient,
) -> None:
    sign_in_as(client, Profile.HELPDESK)
    req = make_request()
    entry = messages.BY_CODE["LOGIN-06"]
    page = text_of(client.get(f"/helpdesk/requests/{req.id}?reply_start=LOGIN-06"))
    box = re.search(r'<textarea[^>]*id="text"[^>]*>(.*?)</textarea>', page, re.S)
    assert box is not None
    assert entry.text in box.group(1)
    assert "/guides/troubleshooting#LOGIN-06" in box.group(1)
    fragment = client.get(
        f"/helpdesk/requests/{req.id}/reply-draft?reply_start=LOGIN-06",
        headers={"HX-Request": "true"},
    )
    assert fragment.status_code == 200
    assert entry.what_to_do in text_of(fragment)
    assert "<html" not in fragment.get_data(as_text=True)
    # Nothing about any account is offered: no placeholder, no User ID.
    assert "{{" not in page


def test_the_page_says_when_the_typed_address_is_not_the_accounts(client: FlaskClient) -> None:
    org = make_org("Acme Claims")
    make_user(org, user_id="acme.ada", email="ada@acme.example")
    sign_in_as(client, Profile.HELPDESK)
    other = make_request(user_id="acme.ada", email="someone@elsewhere.example")
    same = make_request(user_id="ACME.ADA", email="Ada@Acme.example")
    page = text_of(client.get(f"/helpdesk/requests/{other.id}"))
    assert "differs from the registered address of the account acme.ada" in page
    assert "ada@acme.example" not in page  # the registered address is not shown either
    assert 'id="reply-address-differs"' not in client.get(f"/helpdesk/requests/{same.id}").get_data(
        as_text=True
    )


def test_resolving_tells_the_requester(app: Flask, client: FlaskClient) -> None:
    staff = sign_in_as(client, Profile.HELPDESK)
    req = make_request(email="typed@example.com")
    response = client.post(f"/helpdesk/requests/{req.id}/resolve")
    assert response.status_code == 302
    assert status_of(req) == "resolved"
    [row] = queued("helpdesk.resolved")
    assert row.to_address == "typed@example.com"
    assert [e.reason for e in audit_events(kind="helpdesk_status_changed", actor=staff)] == [
        "resolved"
    ]
    # Again: nothing more is sent.
    client.post(f"/helpdesk/requests/{req.id}/resolve")
    assert len(queued("helpdesk.resolved")) == 1


def test_resolving_with_the_status_select_tells_the_requester_too(client: FlaskClient) -> None:
    sign_in_as(client, Profile.HELPDESK)
    req = make_request()
    client.post(f"/helpdesk/requests/{req.id}/status", data={"status": "resolved"})
    assert len(queued("helpdesk.resolved")) == 1
    db.session.rollback()
    resolved_at = db.session.scalar(
        select(HelpdeskRequest.resolved_at).where(HelpdeskRequest.id == req.id)
    )
    assert resolved_at is not None
    client.post(f"/helpdesk/requests/{req.id}/status", data={"status": "in_progress"})
    db.session.rollback()
    assert (
        db.session.scalar(select(HelpdeskRequest.resolved_at).where(HelpdeskRequest.id == req.id))
        is None
    )


def test_a_bulk_resolve_tells_each_requester_as_a_single_resolve_does(
    app: Flask, client: FlaskClient, smtp_server: SmtpServer
) -> None:
    sign_in_as(client, Profile.HELPDESK)
    a = make_request(email="first@example.com")
    b = make_request(email="second@example.com")
    done = make_request(email="done@example.com", status="resolved")
    response = client.post(
        "/helpdesk/requests/bulk-status",
        data={"ids": [str(a.id), str(b.id), str(done.id)], "status": "resolved"},
    )
    assert response.status_code == 302
    assert [status_of(r) for r in (a, b)] == ["resolved", "resolved"]
    rows = queued("helpdesk.resolved")
    assert sorted((r.to_address, r.ref) for r in rows) == [
        ("first@example.com", a.reference),
        ("second@example.com", b.reference),
    ]
    # Sent straight after the commit (deliver_soon), not left for the scheduler's retry.
    settle(app)
    sent = sorted(str(m["To"]) for m in smtp_server.messages)
    assert sent == ["first@example.com", "second@example.com"]
    assert all(LINK.search(m.get_content()) for m in smtp_server.messages)
    # A bulk change to another status tells nobody.
    client.post(
        "/helpdesk/requests/bulk-status", data={"ids": [str(a.id)], "status": "in_progress"}
    )
    assert len(queued("helpdesk.resolved")) == 2


def test_a_reply_that_resolves_sends_one_email(client: FlaskClient) -> None:
    sign_in_as(client, Profile.HELPDESK)
    req = make_request()
    client.post(
        f"/helpdesk/requests/{req.id}/reply", data={"text": "Fixed now.", "then": "resolved"}
    )
    assert status_of(req) == "resolved"
    assert len(queued("helpdesk.reply")) == 1
    assert queued("helpdesk.resolved") == []
    assert "marked your request as resolved" in queued("helpdesk.reply")[0].body


@pytest.mark.parametrize("profile", [Profile.CLAIMS_HANDLER, Profile.ADMINISTRATOR])
def test_only_staff_reply(client: FlaskClient, profile: Profile) -> None:
    sign_in_as(client, profile)
    req = make_request()
    for path in ("reply", "resolve"):
        response = client.post(f"/helpdesk/requests/{req.id}/{path}", data={"text": "x"})
        assert response.status_code == 403
    assert client.get(f"/helpdesk/requests/{req.id}/reply-draft").status_code == 403
    assert queued("helpdesk.reply") == []
    assert status_of(req) == "new"


def test_no_reply_without_login(client: FlaskClient) -> None:
    req = make_request()
    response = client.post(f"/helpdesk/requests/{req.id}/reply", data={"text": "x"})
    assert response.status_code in (302, 401)
    assert queued("helpdesk.reply") == []


@pytest.mark.config(WTF_CSRF_ENABLED=True)
@pytest.mark.parametrize("path", ["reply", "resolve"])
def test_replies_and_resolving_need_the_csrf_token(client: FlaskClient, path: str) -> None:
    staff = make_user(profile=Profile.HELPDESK)
    csrf_sign_in(client, staff, door="portal")
    req = make_request()
    response = client.post(f"/helpdesk/requests/{req.id}/{path}", data={"text": "x"})
    assert response.status_code == 400
    assert queued("helpdesk.reply") == []
    assert status_of(req) == "new"


def test_the_operator_extend_and_resolve_tells_the_requester(client: FlaskClient) -> None:
    from tests.operator.helpers import expired
    from tests.operator.helpers import future

    org = make_org("Acme Claims")
    user = expired(org, user_id="acme.late", profile=Profile.ADMINISTRATOR)
    req = make_request(user_id="acme.late", status="referred", email="late@acme.example")
    sign_in_as(client, Profile.PORTAL_TEAM)
    response = client.post(
        f"/operator/users/{user.id}/extend-and-enable",
        data={"expires_on": future().isoformat(), "reference": req.reference, "resolve": "y"},
    )
    assert response.status_code == 302
    assert status_of(req) == "resolved"
    [row] = queued("helpdesk.resolved")
    assert row.to_address == "late@acme.example"
    kinds = [e.kind for e in timeline(req)]
    assert kinds[-3:] == ["account_action", "status_changed", "mail_queued"]


def test_without_the_choice_the_referred_request_stays_referred(client: FlaskClient) -> None:
    from tests.operator.helpers import expired
    from tests.operator.helpers import future

    org = make_org("Acme Claims")
    user = expired(org, user_id="acme.late", profile=Profile.ADMINISTRATOR)
    req = make_request(user_id="acme.late", status="referred")
    sign_in_as(client, Profile.PORTAL_TEAM)
    client.post(
        f"/operator/users/{user.id}/extend-and-enable",
        data={"expires_on": future().isoformat(), "reference": req.reference},
    )
    assert status_of(req) == "referred"
    assert queued("helpdesk.resolved") == []


def test_a_refused_action_resolves_nothing(client: FlaskClient) -> None:
    from tests.operator.helpers import expired

    org = make_org("Acme Claims")
    user = expired(org, user_id="acme.late", profile=Profile.ADMINISTRATOR)
    req = make_request(user_id="acme.late", status="referred")
    sign_in_as(client, Profile.PORTAL_TEAM)
    # Re-enable alone is refused while the expiry date is reached (R6).
    response = client.post(
        f"/operator/users/{user.id}/enable", data={"reference": req.reference, "resolve": "y"}
    )
    assert response.status_code == 422
    assert status_of(req) == "referred"
    assert queued("helpdesk.resolved") == []


def test_the_walk_over_mutating_routes_covers_the_new_routes() -> None:
    """tests/operator/test_helpdesk_cannot_change_accounts.py walks every /helpdesk/ POST as a
    Helpdesk user with a form full of account fields (and a reply, a resolve, information)."""
    from tests.operator.test_helpdesk_cannot_change_accounts import HELPDESK_ROUTES

    walked = {endpoint for _, _, endpoint in HELPDESK_ROUTES}
    assert {
        "helpdesk_replies.send",
        "helpdesk_replies.resolve",
        "helpdesk_status.add",
    } <= walked


def test_staff_can_replace_the_status_link(client: FlaskClient) -> None:
    from portal.db import write_transaction
    from portal.helpdesk import status_link

    sign_in_as(client, Profile.HELPDESK)
    req = make_request()
    with write_transaction(db.session):
        found = db.session.get(HelpdeskRequest, req.id)
        assert found is not None
        old = status_link.token(found)
    requester = client.application.test_client()
    assert requester.get(f"/helpdesk/status/{old}").status_code == 303
    assert client.post(f"/helpdesk/requests/{req.id}/status-link").status_code == 302
    assert requester.get("/helpdesk/status").status_code == 404
    assert requester.get(f"/helpdesk/status/{old}").status_code == 404
    assert [e.details for e in timeline(req) if e.kind == "status_link_replaced"] == [
        "The links sent so far no longer work; the next email carries the new one."
    ]
    page = client.get(f"/helpdesk/requests/{req.id}").get_data(as_text=True)
    assert "<strong>Status link replaced</strong>" in page
    client.post(f"/helpdesk/requests/{req.id}/reply", data={"text": "Here is a new link."})
    [row] = queued("helpdesk.reply")
    assert old not in row.body
    found_link = LINK.search(row.body)
    assert found_link is not None
    assert requester.get(found_link.group(0).split("test", 1)[1]).status_code == 303

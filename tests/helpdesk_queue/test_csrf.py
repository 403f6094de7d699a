"""CSRF is refused on every POST of the queue (the suite turns CSRF off by default)."""

from __future__ import annotations

import html
import json
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlalchemy import select

from portal import create_app
from portal.accounts.models import Profile
from portal.extensions import db
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import RequestEvent
from portal.helpdesk.models import RequestKind
from portal.mail_queue import QueuedMail
from tests.conftest import base_settings
from tests.factories import make_org
from tests.factories import make_user
from tests.helpdesk_factories import make_request
from tests.helpers import csrf_sign_in
from tests.helpers import csrf_token_in

QUEUE_POSTS = sorted(
    rule.rule
    for rule in create_app(base_settings("sqlite://")).url_map.iter_rules()
    if rule.endpoint.startswith("helpdesk_queue.") and "POST" in (rule.methods or ())
)
FORMS = {
    "status": {"status": "resolved"},
    "notes": {"note": "a note"},
    "refer": {"note": ""},
    "guide-reply": {"section": "LOGIN-01"},
    "send-user-id": {},
    "assign": {"assignee": "me"},
    "bulk-status": {"status": "resolved"},
}


def test_the_walk_sees_every_queue_post() -> None:
    assert sorted(r.rsplit("/", 1)[-1] for r in QUEUE_POSTS) == sorted(FORMS)


def _state() -> tuple[int, int, list[str]]:
    db.session.rollback()
    return (
        db.session.scalar(select(func.count()).select_from(RequestEvent)) or 0,
        db.session.scalar(select(func.count()).select_from(QueuedMail)) or 0,
        list(db.session.scalars(select(HelpdeskRequest.status).order_by(HelpdeskRequest.id))),
    )


@pytest.mark.config(WTF_CSRF_ENABLED=True)
@pytest.mark.parametrize("action", sorted(FORMS))
def test_every_queue_post_refuses_a_missing_or_foreign_token(
    app: Flask, client: FlaskClient, action: str
) -> None:
    org = make_org("Acme Claims")
    make_user(org, profile=Profile.ADMINISTRATOR, email="boss@acme.example")
    req = make_request(
        kind=RequestKind.RESEND_USER_ID, organisation_name="Acme Claims", email="boss@acme.example"
    )
    staff = make_user(profile=Profile.HELPDESK)
    csrf_sign_in(client, staff, door="portal")
    before = _state()
    url = f"/helpdesk/requests/{req.id}/{action}"
    if action == "bulk-status":
        url = "/helpdesk/requests/bulk-status"
        FORMS[action]["ids"] = str(req.id)
    for headers in ({}, {"HX-Request": "true"}):
        response = client.post(url, data=FORMS[action], headers=headers)
        assert response.status_code == 400
        assert "Your form expired" in response.get_data(as_text=True)
    stranger = app.test_client()
    foreign = re.search(
        r'name="csrf_token" type="hidden" value="([^"]+)"',
        stranger.get("/portal/login").get_data(as_text=True),
    )
    assert foreign is not None
    response = client.post(url, data={**FORMS[action], "csrf_token": foreign.group(1)})
    assert response.status_code == 400
    assert _state() == before


@pytest.mark.config(WTF_CSRF_ENABLED=True)
def test_the_status_select_works_with_the_token_from_hx_headers(client: FlaskClient) -> None:
    req = make_request()
    staff = make_user(profile=Profile.HELPDESK)
    csrf_sign_in(client, staff, door="portal")
    page = client.get(f"/helpdesk/requests/{req.id}").get_data(as_text=True)
    found = re.search(r"<body hx-headers='([^']*)'>", page)
    assert found is not None
    token = json.loads(html.unescape(found.group(1)))["X-CSRFToken"]
    response = client.post(
        f"/helpdesk/requests/{req.id}/status",
        data={"status": "in_progress"},
        headers={"HX-Request": "true", "X-CSRFToken": token},
    )
    assert response.status_code == 200
    assert _state()[2] == ["in_progress"]
    # And the plain form's own field works without JavaScript.
    field = csrf_token_in(page[page.index('<form id="request-status"') :])
    response = client.post(
        f"/helpdesk/requests/{req.id}/status",
        data={"status": "resolved", "csrf_token": field},
    )
    assert response.status_code == 302
    assert _state()[2] == ["resolved"]

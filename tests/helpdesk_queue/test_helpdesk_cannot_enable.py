"""Helpdesk cannot enable accounts (SPEC §1, §5; issue 4 item 7): every account-changing route
answers a Helpdesk user with 403 and changes nothing, whatever is posted; the queue offers no
account control.

Account-changing routes are read from the real URL map when the tests are collected: every
route of the Admin Console (``console.*``) and of the Portal team area (``operator.*``, when
present), so a route added later is walked without editing this file.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal import clock
from portal import create_app
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.audit.models import AuditEvent
from portal.extensions import db
from tests.conftest import base_settings
from tests.console.test_console_access import plausible_form
from tests.console.test_console_access import snapshot
from tests.factories import lock_out
from tests.factories import make_org
from tests.factories import make_user
from tests.helpdesk_factories import make_request
from tests.helpdesk_queue.conftest import sign_in_as

ACCOUNT_AREAS = ("console.", "operator.")
LOGIN_ENDPOINTS = {"console.login", "operator.login"}


def _routes() -> list[tuple[str, str, str]]:
    app = create_app(base_settings("sqlite://"))
    return sorted(
        (rule.rule, method, rule.endpoint)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith(ACCOUNT_AREAS) and rule.endpoint not in LOGIN_ENDPOINTS
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
    )


ROUTES = _routes()


def test_the_walk_sees_the_account_changing_routes() -> None:
    endpoints = {endpoint for _, method, endpoint in ROUTES if method == "POST"}
    assert {
        "console.user_set_enabled",
        "console.user_set_expiry",
        "console.user_update",
        "console.user_reset_password",
        "console.user_create",
    } <= endpoints


def _url(app: Flask, endpoint: str, method: str, pk: int) -> str:
    rule = next(r for r in app.url_map.iter_rules(endpoint) if method in (r.methods or ()))
    values: dict[str, Any] = {}
    for name in rule.arguments:
        values[name] = pk if name in ("pk", "id", "user_pk") else "x"
    return app.url_map.bind("localhost").build(endpoint, values, method=method)


@pytest.mark.parametrize(
    ("rule", "method", "endpoint"),
    [pytest.param(*r, id=f"{r[1]} {r[0]}") for r in ROUTES],
)
def test_a_helpdesk_user_gets_403_and_nothing_changes(
    app: Flask, client: FlaskClient, rule: str, method: str, endpoint: str
) -> None:
    org = make_org()
    make_user(org, profile=Profile.ADMINISTRATOR)
    target = make_user(org, expires_on=clock.today() + timedelta(days=30))
    lock_out(target)  # the kind of account Helpdesk is asked about
    helpdesk = sign_in_as(client, Profile.HELPDESK)
    before = snapshot(target)
    db.session.rollback()
    last_event = max(db.session.scalars(select(AuditEvent.id)).all(), default=0)
    users_before = db.session.scalars(select(User.id)).all()
    form = {
        **plausible_form(),
        "expires_on": (clock.today() + timedelta(days=900)).isoformat(),
        "user_pk": str(target.id),
        "reference": "HD-000001",
    }
    url = _url(app, endpoint, method, target.id)
    for headers in ({}, {"HX-Request": "true"}):
        response = client.open(url, method=method, data=form, headers=headers, buffered=True)
        assert response.status_code == 403, (url, response.status_code)
    assert snapshot(target) == before
    db.session.rollback()
    assert db.session.scalars(select(User.id)).all() == users_before
    new_events = db.session.scalars(select(AuditEvent).where(AuditEvent.id > last_event)).all()
    assert {e.kind for e in new_events} == {"authz_denied"}
    assert all(e.actor_id == helpdesk.id for e in new_events)


def test_the_queue_pages_have_no_account_control(client: FlaskClient) -> None:
    org = make_org()
    locked = lock_out(make_user(org, user_id="locked.out"))
    sign_in_as(client, Profile.HELPDESK)
    req = make_request(user_id=locked.user_id)
    for path in (f"/helpdesk/requests/{req.id}", "/helpdesk/requests"):
        body = client.get(path).get_data(as_text=True)
        for forbidden in ("/enabled", "/expiry", "/console/users", "/operator/", 'name="enabled"'):
            assert forbidden not in body, (path, forbidden)
    # The account is shown read-only on the request's page.
    page = client.get(f"/helpdesk/requests/{req.id}").get_data(as_text=True)
    assert "Read-only: Helpdesk cannot change accounts." in page

"""Who may use the Portal team's area (docs/security.md AC-01, AC-05, CS-01, CS-02): every
``operator.*`` rule of ``app.url_map`` × every profile, and CSRF on every operator POST.

The routes are read from the real URL map, so a route added later is walked without editing
this file.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal import create_app
from portal.accounts.models import Profile
from tests.conftest import base_settings
from tests.factories import lock_out
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import refresh
from tests.helpers import audit_events
from tests.helpers import csrf_sign_in
from tests.helpers import csrf_token_in
from tests.helpers import sign_in_as
from tests.helpers import timeline
from tests.operator.helpers import accounts_snapshot
from tests.operator.helpers import future
from tests.operator.helpers import make_request

HX = {"HX-Request": "true"}


def _routes() -> list[tuple[str, str, str]]:
    app = create_app(base_settings("sqlite://"))
    return sorted(
        (rule.rule, method, rule.endpoint)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("operator.")
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
    )


OPERATOR_ROUTES = _routes()
OPERATOR_POSTS = [r for r in OPERATOR_ROUTES if r[1] == "POST"]
PROFILES = ["anonymous", "claims_handler", "administrator", "helpdesk", "portal_team"]


def params(routes: list[tuple[str, str, str]]) -> list[Any]:
    return [pytest.param(*r, id=f"{r[1]} {r[0]}") for r in routes]


def test_the_walk_sees_the_operator_routes() -> None:
    assert {endpoint for _, _, endpoint in OPERATOR_ROUTES} >= {
        "operator.home",
        "operator.organisations_list",
        "operator.organisation_create",
        "operator.organisation_page",
        "operator.administrator_create",
        "operator.users",
        "operator.user_page",
        "operator.user_enable",
        "operator.user_extend",
        "operator.user_extend_enable",
    }


def build(app: Flask, rule: str, method: str, endpoint: str, pk: int, org_id: int) -> str:
    found = next(
        r
        for r in app.url_map.iter_rules(endpoint)
        if r.rule == rule and method in (r.methods or ())
    )
    organisation = rule.startswith("/operator/organisations/<")
    values = {name: org_id if organisation else pk for name in found.arguments}
    return app.url_map.bind("localhost").build(endpoint, values, method=method)


def form(reference: str = "") -> dict[str, str]:
    return {
        "name": "Planted Organisation",
        "user_id": "planted.admin",
        "full_name": "Planted Admin",
        "email": "planted@example.com",
        "expires_on": future(400).isoformat(),
        "reference": reference,
        "enabled": "true",
    }


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize(("rule", "method", "endpoint"), params(OPERATOR_ROUTES))
def test_every_operator_route_for_every_profile(
    app: Flask, client: FlaskClient, rule: str, method: str, endpoint: str, profile: str
) -> None:
    org = make_org()
    target = lock_out(make_user(org))
    actor = None if profile == "anonymous" else sign_in_as(client, Profile(profile))
    url = build(app, rule, method, endpoint, target.id, org.id)
    before = accounts_snapshot(skip=actor)

    data = form() if method == "POST" else None
    response = client.open(url, method=method, data=data, buffered=True)
    hx = client.open(url, method=method, data=data, headers=HX, buffered=True)
    assert response.status_code < 500
    assert hx.status_code < 500

    if actor is None:
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/portal/login")
        assert hx.headers["HX-Redirect"].startswith("/portal/login")
    elif profile != "portal_team":
        assert response.status_code == 403
        assert hx.status_code == 403
        denied = audit_events(kind="authz_denied", actor=actor)
        assert [(e.reason, e.details) for e in denied] == [("operator", f"{method} {url}")] * 2
    else:
        assert response.status_code != 403
        assert hx.status_code != 403
        assert audit_events(kind="authz_denied", actor=actor) == []
        return
    assert accounts_snapshot(skip=actor) == before


# --- CSRF on every operator POST (CS-01, CS-02) ----------------------------------------------


@pytest.mark.config(WTF_CSRF_ENABLED=True)
@pytest.mark.parametrize(("rule", "method", "endpoint"), params(OPERATOR_POSTS))
def test_every_operator_post_refuses_a_missing_or_foreign_token(
    app: Flask, client: FlaskClient, rule: str, method: str, endpoint: str
) -> None:
    org = make_org()
    target = lock_out(make_user(org))
    req = make_request(user_id=target.user_id)
    operator = make_user(None, profile=Profile.PORTAL_TEAM)
    csrf_sign_in(client, operator, door="portal")
    url = build(app, rule, method, endpoint, target.id, org.id)
    before = accounts_snapshot()
    for headers in ({}, HX):
        response = client.post(url, data=form(req.reference), headers=headers)
        assert response.status_code == 400
        assert "Your form expired" in response.get_data(as_text=True)
    stranger = app.test_client()
    foreign = csrf_token_in(stranger.get("/portal/login").get_data(as_text=True))
    response = client.post(url, data={**form(req.reference), "csrf_token": foreign})
    assert response.status_code == 400
    assert accounts_snapshot() == before
    assert timeline(req) == []
    assert client.get("/operator/").status_code == 200  # still logged in: nothing happened


@pytest.mark.config(WTF_CSRF_ENABLED=True)
def test_the_operator_forms_carry_a_working_token(app: Flask, client: FlaskClient) -> None:
    org = make_org()
    target = lock_out(make_user(org))
    req = make_request(user_id=target.user_id)
    csrf_sign_in(client, make_user(None, profile=Profile.PORTAL_TEAM), door="portal")

    page = client.get(f"/operator/users/{target.id}?ref={req.reference}").get_data(as_text=True)
    enable_form = page[page.index(f'action="/operator/users/{target.id}/enable"') :]
    token = csrf_token_in(enable_form)
    response = client.post(
        f"/operator/users/{target.id}/enable",
        data={"csrf_token": token, "reference": req.reference},
    )
    assert response.status_code == 302
    assert refresh(target).enabled
    assert len(timeline(req)) == 1

    target2 = lock_out(make_user(org))
    page = client.get(f"/operator/users/{target2.id}").get_data(as_text=True)
    expiry_form = page[page.index(f'action="/operator/users/{target2.id}/extend-and-enable"') :]
    token = csrf_token_in(expiry_form)
    extended = client.post(
        f"/operator/users/{target2.id}/extend-and-enable",
        data={"csrf_token": token, "expires_on": future(30).isoformat()},
    )
    assert extended.status_code == 302
    assert refresh(target2).enabled

    new_org = client.get("/operator/organisations/new").get_data(as_text=True)
    token = csrf_token_in(new_org)
    created = client.post(
        "/operator/organisations/new", data={"name": "Tokened Ltd", "csrf_token": token}
    )
    assert created.status_code == 302

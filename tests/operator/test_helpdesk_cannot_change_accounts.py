"""Helpdesk staff cannot enable accounts, nor change any flag, password, expiry date, user or
organisation: not in the UI, not by a crafted request (docs/rules.md §1, §5; issue 4 item 7).

Every route of the real app that accepts POST/PUT/PATCH/DELETE is read from ``app.url_map`` and
classified:

* **account routes**: everything under ``/console/`` and ``/operator/`` (the login door aside).
  A Helpdesk user gets an audited 403 from each, and nothing in ``users`` or
  ``organisations`` changes (a snapshot of every column of every row, before and after).
* **Helpdesk routes** (``/helpdesk/…``): the Helpdesk's own area.  Walked as a Helpdesk user
  with a form full of account fields: no user (but the caller) and no organisation changes.
* **other routes**, each listed in ``NOT_ACCOUNT_CHANGING`` with the reason it is not a way to
  change someone else's account, and walked the same way.

A new mutating route that fits none of these fails ``test_every_mutating_route_is_known``:
decide whether it changes accounts, guard it, and add it here.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlalchemy import select
from werkzeug.routing import IntegerConverter

from portal import create_app
from portal.accounts.models import Organisation
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import RequestEvent
from tests.conftest import base_settings
from tests.factories import PASSWORD
from tests.factories import lock_out
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import remove_access
from tests.helpers import sign_in_as
from tests.operator.helpers import accounts_snapshot
from tests.operator.helpers import expired
from tests.operator.helpers import future
from tests.operator.helpers import make_request

HX = {"HX-Request": "true"}
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
ACCOUNT_PREFIXES = ("/console/", "/operator/")
HELPDESK_PREFIX = "/helpdesk/"

#: Mutating routes outside the account areas, and why none of them changes another person's
#: account (each is still walked as a Helpdesk user below).
NOT_ACCOUNT_CHANGING = {
    "auth.portal_login": "logging in; a logged-in user is sent home",
    "auth.console_login": "logging in (Administrators only); a logged-in user is sent home",
    "auth.logout": "ends the caller's own session",
    "auth.change_password": "the caller's own password, with the current one",
    "reset.request_reset": "emails a reset link to an Administrator's stored address",
    "reset.new_password": "needs the emailed single-use link of that Administrator",
    "newsletter.sign_up": "adds a pending newsletter subscriber (no account)",
    "newsletter.confirm": "confirms a newsletter subscriber with its emailed single-use link",
    "newsletter.unsubscribe": "removes a newsletter subscriber with its signed link",
    "cookies.cookies": "the caller's own cookie choice (a cookie)",
    "cookies.hide_message": "the caller's own cookie choice (a cookie)",
    "second_factor.login_step": "the caller's own half-login (its code or passkey)",
    "second_factor.enrol": "the caller's own second factors, behind a recent check",
    "second_factor.remove": "removes one of the caller's own second factors",
}
#: The account routes the walk must at least see (a guard against an empty walk).
EXPECTED_ACCOUNT_ENDPOINTS = {
    "console.user_set_enabled",
    "console.user_set_expiry",
    "console.user_update",
    "console.user_reset_password",
    "console.user_sign_out",
    "console.user_create",
    "operator.user_enable",
    "operator.user_extend",
    "operator.user_extend_enable",
    "operator.organisation_create",
    "operator.administrator_create",
}


def _mutating_routes() -> list[tuple[str, str, str]]:
    app = create_app(base_settings("sqlite://"))
    return sorted(
        (rule.rule, method, rule.endpoint)
        for rule in app.url_map.iter_rules()
        for method in sorted((rule.methods or set()) & MUTATING)
    )


ROUTES = _mutating_routes()
ACCOUNT_ROUTES = [
    r for r in ROUTES if r[0].startswith(ACCOUNT_PREFIXES) and r[2] not in NOT_ACCOUNT_CHANGING
]
HELPDESK_ROUTES = [r for r in ROUTES if r[0].startswith(HELPDESK_PREFIX)]
OTHER_ROUTES = [r for r in ROUTES if r[2] in NOT_ACCOUNT_CHANGING]


def params(routes: list[tuple[str, str, str]]) -> list[Any]:
    return [pytest.param(*r, id=f"{r[1]} {r[0]}") for r in routes]


def test_every_mutating_route_is_known() -> None:
    known = {*ACCOUNT_ROUTES, *HELPDESK_ROUTES, *OTHER_ROUTES}
    unknown = [
        f"{method} {rule} ({endpoint})"
        for rule, method, endpoint in ROUTES
        if (rule, method, endpoint) not in known
    ]
    assert unknown == [], (
        "New routes that change data: if one can change a user or an organisation, guard it "
        "(and put it under /console/ or /operator/); otherwise add it to NOT_ACCOUNT_CHANGING "
        "with the reason"
    )
    assert {endpoint for _, _, endpoint in ACCOUNT_ROUTES} >= EXPECTED_ACCOUNT_ENDPOINTS
    assert set(NOT_ACCOUNT_CHANGING) <= {endpoint for _, _, endpoint in ROUTES}


# --- the world the walk runs in ------------------------------------------------------------


class World:
    """An organisation whose users are in every state, operator staff, a helpdesk request."""

    def __init__(self) -> None:
        self.org = make_org("Acme Claims Ltd")
        self.admin = make_user(self.org, user_id="acme.admin", profile=Profile.ADMINISTRATOR)
        self.locked = lock_out(make_user(self.org, user_id="acme.locked"))
        self.expired = expired(self.org, user_id="acme.expired", profile=Profile.ADMINISTRATOR)
        self.removed = remove_access(make_user(self.org, user_id="acme.removed"))
        self.portal_team = make_user(None, user_id="ops.portal", profile=Profile.PORTAL_TEAM)
        self.request = make_request(user_id="acme.expired")

    def url(self, app: Flask, rule: str, method: str, endpoint: str, target: User) -> str:
        """The rule's URL with real ids: users for ``pk``, the organisation, the request."""
        found = next(
            r
            for r in app.url_map.iter_rules(endpoint)
            if r.rule == rule and method in (r.methods or ())
        )
        values: dict[str, Any] = {}
        for name, converter in getattr(found, "_converters", {}).items():
            is_int = isinstance(converter, IntegerConverter)
            if "org" in name or "/organisations/<" in rule:
                values[name] = self.org.id
            elif rule.startswith(HELPDESK_PREFIX) and is_int:
                values[name] = self.request.id
            elif is_int:
                values[name] = target.id
            else:
                values[name] = "not-a-real-value"
        return app.url_map.bind("localhost").build(endpoint, values, method=method)

    def form(self) -> dict[str, str]:
        """Every field any account form takes, set to change something."""
        return {
            "enabled": "true",
            "confirmed": "yes",
            "reference": self.request.reference,
            "expires_on": future(900).isoformat(),
            "name": "Planted Organisation",
            "user_id": "planted.user",
            "full_name": "Changed By Helpdesk",
            "email": "changed@example.com",
            "profile": "administrator",
            "password": "a new password for nobody",
            "confirm": "a new password for nobody",
            "current_password": PASSWORD,
            "status": "resolved",
            "note": "a note",
            # replies, resolving and the requester's status page (issue 14)
            "text": "a reply",
            "then": "resolved",
            "resolve": "y",
            "information": "more information",
        }


def timeline_size() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(RequestEvent)) or 0


# --- account routes: 403, nothing changed ----------------------------------------------------


@pytest.mark.parametrize("target", ["locked", "expired", "removed", "admin", "portal_team"])
@pytest.mark.parametrize(("rule", "method", "endpoint"), params(ACCOUNT_ROUTES))
def test_helpdesk_gets_403_and_changes_nothing(
    app: Flask, client: FlaskClient, rule: str, method: str, endpoint: str, target: str
) -> None:
    world = World()
    helpdesk = sign_in_as(client, Profile.HELPDESK)
    url = world.url(app, rule, method, endpoint, getattr(world, target))
    before = accounts_snapshot()
    events_before = timeline_size()
    for headers in ({}, HX):
        response = client.open(url, method=method, data=world.form(), headers=headers)
        assert response.status_code == 403
    assert accounts_snapshot() == before
    assert timeline_size() == events_before
    denied = db.session.scalars(
        select(AuditEvent).where(
            AuditEvent.kind == "authz_denied", AuditEvent.actor_id == helpdesk.id
        )
    ).all()
    assert [e.details for e in denied] == [f"{method} {url}"] * 2


@pytest.mark.parametrize("profile", [Profile.CLAIMS_HANDLER, Profile.ADMINISTRATOR])
@pytest.mark.parametrize(
    ("rule", "method", "endpoint"),
    params([r for r in ACCOUNT_ROUTES if r[0].startswith("/operator/")]),
)
def test_organisation_users_get_403_from_operator_changes(
    app: Flask,
    client: FlaskClient,
    rule: str,
    method: str,
    endpoint: str,
    profile: Profile,
) -> None:
    world = World()
    sign_in_as(client, profile)
    url = world.url(app, rule, method, endpoint, world.locked)
    before = accounts_snapshot()
    for headers in ({}, HX):
        assert (
            client.open(url, method=method, data=world.form(), headers=headers).status_code == 403
        )
    assert accounts_snapshot() == before


# --- every other mutating route: no account but the caller's changes -------------------------


@pytest.mark.parametrize(("rule", "method", "endpoint"), params(HELPDESK_ROUTES + OTHER_ROUTES))
def test_other_routes_change_no_account_for_helpdesk(
    app: Flask, client: FlaskClient, rule: str, method: str, endpoint: str
) -> None:
    world = World()
    helpdesk = sign_in_as(client, Profile.HELPDESK)
    before = accounts_snapshot(skip=helpdesk)
    for target in (world.locked, world.expired, world.removed):
        url = world.url(app, rule, method, endpoint, target)
        for headers in ({}, HX):
            response = client.open(url, method=method, data=world.form(), headers=headers)
            assert response.status_code < 500
    assert accounts_snapshot(skip=helpdesk) == before
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Organisation)) == 1


# --- and no control on the Helpdesk's pages --------------------------------------------------


def test_no_account_control_on_pages_a_helpdesk_user_can_open(
    app: Flask, client: FlaskClient
) -> None:
    """Every GET page a Helpdesk user can open (200) offers no form or link to an account
    route: the controls are simply not there."""
    world = World()
    sign_in_as(client, Profile.HELPDESK)
    account_paths = {
        world.url(app, rule, method, endpoint, user)
        for rule, method, endpoint in ACCOUNT_ROUTES
        for user in (world.locked, world.expired, world.removed, world.admin)
    }
    gets = sorted(
        (rule.rule, rule.endpoint)
        for rule in app.url_map.iter_rules()
        if "GET" in (rule.methods or ()) and rule.endpoint != "static"
    )
    opened = 0
    for rule, endpoint in gets:
        url = world.url(app, rule, "GET", endpoint, world.locked)
        response = client.get(url)
        if response.status_code != 200 or response.mimetype != "text/html":
            continue
        opened += 1
        body = response.get_data(as_text=True)
        assert not [p for p in account_paths if f'"{p}"' in body], url
        assert "/operator/" not in body, url
    assert opened >= 2


def test_the_request_itself_is_untouched(client: FlaskClient) -> None:
    """Sanity: the walk's request exists and a Helpdesk user's refused posts left it alone."""
    world = World()
    sign_in_as(client, Profile.HELPDESK)
    client.post(f"/operator/users/{world.expired.id}/extend-and-enable", data=world.form())
    db.session.rollback()
    req = db.session.get(HelpdeskRequest, world.request.id)
    assert req is not None
    assert req.status == "referred"
    assert req.updated_at == world.request.updated_at

"""Who may use which Console route (docs/security.md AC-01, AC-02, AC-05, CS-01, CS-02, CS-04,
SE-08, CP-01, CP-02): a walk over every ``console.*`` rule of ``app.url_map`` × every profile,
isolation between organisations, CSRF on every POST route of the app, cache headers and the
htmx configuration, and a lint of the templates.

The routes are read from the real URL map when the tests are collected, so a route added
later is walked without editing this file.  Runs on SQLite and, when PORTAL_TEST_DATABASE_URL
is set, on PostgreSQL.
"""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from portal import clock
from portal import create_app
from portal.accounts.models import Organisation
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.accounts.queries import UserFilters
from portal.audit.models import AuditEvent
from portal.db import write_transaction
from portal.extensions import db
from portal.reviews import service as reviews
from tests.conftest import base_settings
from tests.factories import PASSWORD
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import refresh
from tests.helpers import audit_events
from tests.helpers import csrf_sign_in
from tests.helpers import csrf_token_in
from tests.helpers import sign_in_as

HX = {"HX-Request": "true"}
TEMPLATES = Path(__file__).resolve().parents[2] / "portal" / "templates"
BODY_HEADERS = re.compile(r"<body hx-headers='([^']*)'>")
HTMX_CONFIG = re.compile(r"<meta name=\"htmx-config\" content='([^']*)'>")


def _routes() -> list[tuple[str, str, str]]:
    """(rule, method, endpoint) for every rule of the real app (HEAD and OPTIONS aside)."""
    app = create_app(base_settings("sqlite://"))
    return sorted(
        (rule.rule, method, rule.endpoint)
        for rule in app.url_map.iter_rules()
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
    )


ROUTES = _routes()
CONSOLE_ROUTES = [r for r in ROUTES if r[2].startswith("console.")]
PK_ROUTES = [r for r in CONSOLE_ROUTES if "<int:pk>" in r[0]]
CONSOLE_GETS = [r for r in CONSOLE_ROUTES if r[1] == "GET"]
#: GET pages whose ``pk`` is not a user's (a bulk operation, an import): their own tests
#: (tests/console/test_bulk.py, test_csv_import.py) check them with a record of their kind.
NOT_USER_PK = {"console.bulk_result", "console.users_import_preview"}
POST_ROUTES = [r for r in ROUTES if r[1] == "POST"]
PROFILES = ["anonymous", "claims_handler", "helpdesk", "portal_team", "administrator"]


def params(routes: list[tuple[str, str, str]]) -> list[Any]:
    return [pytest.param(*r, id=f"{r[1]} {r[0]}") for r in routes]


def fetch(client: FlaskClient, url: str, method: str = "GET", **kwargs: Any) -> TestResponse:
    """A request whose body is read at once (a streamed CSV keeps its contexts otherwise)."""
    return client.open(url, method=method, buffered=True, **kwargs)


def test_the_walk_sees_the_console_routes() -> None:
    """Guard against an empty or truncated walk."""
    endpoints = {endpoint for _, _, endpoint in CONSOLE_ROUTES}
    assert {
        "console.home",
        "console.users",
        "console.user_page",
        "console.user_update",
        "console.user_set_enabled",
        "console.user_set_expiry",
        "console.user_reset_password",
        "console.user_sign_out",
        "console.user_create",
    } <= endpoints
    assert {("/logout", "POST"), ("/portal/login", "POST"), ("/console/login", "POST")} <= {
        (rule, method) for rule, method, _ in POST_ROUTES
    }


# --- helpers -----------------------------------------------------------------------------


def build(app: Flask, endpoint: str, method: str, pk: int) -> str:
    """The URL of ``endpoint`` with a real user's ``pk`` (and a dummy for other arguments)."""
    rule = next(r for r in app.url_map.iter_rules(endpoint) if method in (r.methods or ()))
    values: dict[str, Any] = {}
    for name in rule.arguments:
        values[name] = pk if name == "pk" else "not-a-real-value"
    return app.url_map.bind("localhost").build(endpoint, values, method=method)


def sign_in(client: FlaskClient, org: Organisation, profile: str) -> User | None:
    """Log ``client`` in as a new user of ``profile`` (members of ``org``), or not at all."""
    if profile == "anonymous":
        return None
    kind = Profile(profile)
    member = kind in (Profile.CLAIMS_HANDLER, Profile.ADMINISTRATOR)
    return sign_in_as(client, kind, org if member else None)


def without_tokens(body: str) -> str:
    """``body`` with its CSRF tokens blanked (they carry a timestamp), and the request id an
    error page quotes (new for every request)."""
    body = re.sub(r"<code>[0-9a-f]{32}</code>", "<code></code>", body)
    return re.sub(r'("X-CSRFToken": "|name="csrf_token" value=")[^"]*"', r'\1"', body)


def plausible_form() -> dict[str, str]:
    """Fields that would change a user if a route accepted them."""
    return {
        "enabled": "false",
        "confirmed": "yes",
        "full_name": "Changed By Someone Else",
        "email": "changed@example.com",
        "profile": "administrator",
        "expires_on": (clock.today() + timedelta(days=500)).isoformat(),
        "user_id": "planted.user",
        "password": "a new password for nobody",
        "confirm": "a new password for nobody",
        "current_password": PASSWORD,
    }


def snapshot(user: User) -> tuple[Any, ...]:
    fresh = refresh(user)
    return (
        fresh.enabled,
        fresh.active,
        fresh.full_name,
        fresh.email,
        fresh.profile,
        fresh.expires_on,
        fresh.password_hash,
        fresh.session_token,
        fresh.must_change_password,
    )


# --- roles: every console route × every profile (AC-01, AC-05, CS-04) ------------------------


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize(("rule", "method", "endpoint"), params(CONSOLE_ROUTES))
def test_every_console_route_for_every_profile(
    app: Flask, client: FlaskClient, rule: str, method: str, endpoint: str, profile: str
) -> None:
    org = make_org()
    target = make_user(org, user_id="walk.target")
    make_user(org, user_id="walk.admin", profile=Profile.ADMINISTRATOR)
    actor = sign_in(client, org, profile)
    url = build(app, endpoint, method, target.id)

    response = fetch(client, url, method)
    hx = fetch(client, url, method, headers=HX)
    assert response.status_code < 500
    assert hx.status_code < 500

    if actor is None:
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/console/login")
        assert hx.status_code != 302  # htmx would follow it and swap the login page in
        assert hx.headers["HX-Redirect"].startswith("/console/login")
    elif profile != "administrator":
        assert response.status_code == 403
        assert hx.status_code == 403
        denied = audit_events(kind="authz_denied", actor=actor)
        assert len(denied) == 2
        assert {e.details for e in denied} == {f"{method} {url}"}
        assert {e.actor for e in denied} == {actor.user_id}
    else:
        assert response.status_code != 403
        assert hx.status_code != 403
        assert audit_events(kind="authz_denied", actor=actor) == []


@pytest.mark.parametrize("profile", ["claims_handler", "helpdesk", "portal_team"])
@pytest.mark.parametrize(
    ("rule", "method", "endpoint"),
    params([r for r in PK_ROUTES if r[1] == "POST"]),
)
def test_refused_profiles_change_nothing(
    app: Flask, client: FlaskClient, rule: str, method: str, endpoint: str, profile: str
) -> None:
    """A crafted request from a non-Administrator (e.g. Helpdesk staff) changes no account."""
    org = make_org()
    target = make_user(org)
    make_user(org, profile=Profile.ADMINISTRATOR)
    sign_in(client, org, profile)
    before = snapshot(target)
    for headers in ({}, HX):
        response = client.post(
            build(app, endpoint, method, target.id), data=plausible_form(), headers=headers
        )
        assert response.status_code == 403
    assert snapshot(target) == before


# --- isolation between organisations (AC-02) -------------------------------------------------


@pytest.mark.parametrize(("rule", "method", "endpoint"), params(PK_ROUTES))
def test_another_organisations_user_is_a_404(
    app: Flask, client: FlaskClient, rule: str, method: str, endpoint: str
) -> None:
    org, other = make_org(), make_org()
    sign_in(client, org, "administrator")
    theirs = make_user(other)
    their_admin = make_user(other, profile=Profile.ADMINISTRATOR)
    operator = make_user(None, profile=Profile.HELPDESK)
    watched = (theirs, their_admin, operator)
    before = [snapshot(u) for u in watched]

    bodies = {}
    for pk in (theirs.id, their_admin.id, operator.id, 999_999):
        for headers in ({}, HX):
            response = fetch(
                client,
                build(app, endpoint, method, pk),
                method,
                data=plausible_form() if method == "POST" else None,
                headers=headers,
            )
            assert response.status_code == 404
            bodies[pk, bool(headers)] = without_tokens(response.get_data(as_text=True))
    # Whatever id is guessed, the answer is the same.
    assert bodies[theirs.id, False] == bodies[999_999, False]
    assert bodies[theirs.id, True] == bodies[999_999, True]
    assert [snapshot(u) for u in watched] == before
    db.session.rollback()
    touched = db.session.scalars(
        select(AuditEvent.kind).where(AuditEvent.subject_id.in_([u.id for u in watched]))
    ).all()
    assert sorted(touched) == ["user_created"] * 3


# --- CSRF on every POST route (CS-01, CS-02) -------------------------------------------------


@pytest.mark.config(WTF_CSRF_ENABLED=True)
@pytest.mark.parametrize("who", ["anonymous", "administrator"])
@pytest.mark.parametrize(("rule", "method", "endpoint"), params(POST_ROUTES))
def test_every_post_route_refuses_a_missing_token(
    app: Flask, client: FlaskClient, rule: str, method: str, endpoint: str, who: str
) -> None:
    org = make_org()
    target = make_user(org)
    admin = make_user(org, profile=Profile.ADMINISTRATOR)
    if who == "administrator":
        csrf_sign_in(client, admin)
    before = snapshot(target), snapshot(admin)
    url = build(app, endpoint, method, target.id)
    for headers in ({}, HX):
        response = client.post(url, data=plausible_form(), headers=headers)
        assert response.status_code == 400
        assert "Your form expired" in response.get_data(as_text=True)  # the CSRF refusal
    # A token from another session is refused too.
    stranger = app.test_client()
    page = stranger.get("/portal/login").get_data(as_text=True)
    foreign = csrf_token_in(page)
    response = client.post(url, data={**plausible_form(), "csrf_token": foreign})
    assert response.status_code == 400
    assert (snapshot(target), snapshot(admin)) == before
    if who == "administrator":
        assert client.get("/console/").status_code == 200  # still logged in: nothing happened


def body_headers(page: TestResponse) -> dict[str, str]:
    found = BODY_HEADERS.search(page.get_data(as_text=True))
    assert found is not None
    headers = json.loads(html.unescape(found.group(1)))
    assert isinstance(headers, dict)
    return headers


@pytest.mark.config(WTF_CSRF_ENABLED=True)
def test_console_toggle_works_with_the_token_from_hx_headers(client: FlaskClient) -> None:
    org = make_org()
    admin = make_user(org, profile=Profile.ADMINISTRATOR)
    handler = make_user(org)
    csrf_sign_in(client, admin)
    page = client.get("/console/users")
    headers = body_headers(page)
    assert list(headers) == ["X-CSRFToken"]

    removed = client.post(
        f"/console/users/{handler.id}/enabled",
        data={"enabled": "false"},
        headers={**HX, **headers},
    )
    assert removed.status_code == 200
    assert not refresh(handler).enabled

    # The no-JavaScript form (one around the table, not one per row) carries it as a field.
    row_token = csrf_token_in(client.get("/console/users").get_data(as_text=True))
    restored = client.post(
        f"/console/users/{handler.id}/enabled",
        data={"enabled": "true", "csrf_token": row_token},
    )
    assert restored.status_code == 302
    assert refresh(handler).enabled

    # A tampered header is refused.
    refused = client.post(
        f"/console/users/{handler.id}/enabled",
        data={"enabled": "false"},
        headers={**HX, "X-CSRFToken": headers["X-CSRFToken"][:-2] + "xx"},
    )
    assert refused.status_code == 400
    assert refresh(handler).enabled


# --- caching, CSP and the htmx configuration (SE-08, CP-01, CP-02) ---------------------------


@pytest.mark.parametrize(
    ("rule", "method", "endpoint"), params([r for r in CONSOLE_GETS if r[2] not in NOT_USER_PK])
)
def test_console_pages_are_never_cached(
    app: Flask, client: FlaskClient, rule: str, method: str, endpoint: str
) -> None:
    org = make_org()
    target = make_user(org)
    admin = sign_in(client, org, "administrator")
    pk = target.id
    if endpoint.startswith("console.review"):  # an access review's pages: a review's id
        assert admin is not None
        with write_transaction(db.session):
            review, _ = reviews.start(admin, UserFilters(), now=clock.now(), today=clock.today())
        pk = review.id
    for headers in ({}, HX):
        response = fetch(client, build(app, endpoint, method, pk), headers=headers)
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-store"
        assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
        assert "unsafe-eval" not in response.headers["Content-Security-Policy"]
        body = response.get_data(as_text=True)
        if response.mimetype == "text/html" and "<html" in body:
            found = HTMX_CONFIG.search(body)
            assert found is not None
            config = json.loads(html.unescape(found.group(1)))
            assert config["historyCacheSize"] == 0
            assert config["allowEval"] is False
            assert config["allowScriptTags"] is False
            assert config["includeIndicatorStyles"] is False
            assert config["selfRequestsOnly"] is True


def test_console_fragments_and_changes_are_never_cached(client: FlaskClient) -> None:
    org = make_org()
    sign_in(client, org, "administrator")
    handler = make_user(org)
    answers = [
        client.get("/console/users", headers={**HX, "HX-Target": "user-results"}),
        client.post(f"/console/users/{handler.id}/enabled", data={"enabled": "false"}, headers=HX),
        client.post(
            f"/console/users/{handler.id}/expiry",
            data={"expires_on": (clock.today() + timedelta(days=9)).isoformat()},
            headers=HX,
        ),
        client.post(f"/console/users/{handler.id}/password-reset", follow_redirects=True),
    ]
    assert [r.status_code for r in answers] == [200, 200, 200, 200]
    assert [r.headers["Cache-Control"] for r in answers] == ["no-store"] * len(answers)


# --- template lint (CP-01, CP-02) ------------------------------------------------------------

LINT_RULES = {
    "hx-on": re.compile(r"\b(?:data-)?hx-on", re.IGNORECASE),
    "js: in hx-vals/hx-headers": re.compile(
        r"""\b(?:data-)?hx-(?:vals|headers)\s*=\s*["']\s*(?:js|javascript)\s*:""", re.IGNORECASE
    ),
    "hx-vars (always evaluated)": re.compile(r"\b(?:data-)?hx-vars\b", re.IGNORECASE),
    "inline <script>": re.compile(r"<script\b(?![^>]*\bsrc\s*=)[^>]*>", re.IGNORECASE),
    "style attribute": re.compile(r"""\sstyle\s*=\s*["']""", re.IGNORECASE),
    "<style> element": re.compile(r"<style\b", re.IGNORECASE),
    "hx-trigger filter": re.compile(
        r"""\b(?:data-)?hx-trigger\s*=\s*(?:"[^"]*\[|'[^']*\[)""", re.IGNORECASE
    ),
    "inline event handler": re.compile(r"""\son[a-z]+\s*=\s*["']""", re.IGNORECASE),
}


def test_there_are_templates_to_lint() -> None:
    names = {p.relative_to(TEMPLATES).as_posix() for p in TEMPLATES.rglob("*.html")}
    assert "base.html" in names
    assert "console/users/_row.html" in names


@pytest.mark.parametrize("name", list(LINT_RULES))
def test_templates_lint(name: str) -> None:
    pattern = LINT_RULES[name]
    offenders = [
        f"{path.relative_to(TEMPLATES)}:{text[: m.start()].count(chr(10)) + 1}: {m.group(0)}"
        for path in sorted(TEMPLATES.rglob("*.html"))
        for text in [path.read_text(encoding="utf-8")]
        for m in pattern.finditer(text)
    ]
    assert offenders == []


@pytest.mark.parametrize(
    ("sample", "name"),
    [
        ('<button hx-on:click="x()">', "hx-on"),
        ("<div hx-vals='js:{a: 1}'>", "js: in hx-vals/hx-headers"),
        ("<script>alert(1)</script>", "inline <script>"),
        ('<p style="color: red">', "style attribute"),
        ("<input hx-trigger=\"keyup[key=='Enter']\">", "hx-trigger filter"),
        ('<a onclick="x()">', "inline event handler"),
    ],
)
def test_the_lint_catches_what_it_should(sample: str, name: str) -> None:
    assert LINT_RULES[name].search(sample) is not None
    assert LINT_RULES["inline <script>"].search('<script src="/static/app.js" defer>') is None


@pytest.mark.config(WTF_CSRF_ENABLED=True)
def test_a_refused_csrf_token_on_an_htmx_request_reloads_the_page(client: FlaskClient) -> None:
    """htmx would not swap a 400: the answer tells it to reload (a fresh token), docs/security.md
    CS-03."""
    response = client.post(
        "/console/users/1/enabled", data={"enabled": "false"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 400
    assert response.headers["HX-Refresh"] == "true"

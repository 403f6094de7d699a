"""The Console dashboard (docs/rules.md §4): counts by state and reason, expiring soon, dormant
users, each linking to the filtered users list; the counts fragment; roles; a constant query
count."""

from __future__ import annotations

import re
from datetime import timedelta
from html import escape
from typing import Any

import markupsafe
import pytest
from flask.testing import FlaskClient

from portal import clock
from portal.accounts import counts
from portal.accounts.models import Organisation
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.db import write_transaction
from portal.extensions import db
from portal.jobs import nightly
from tests.factories import lock_out
from tests.factories import login
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import refresh
from tests.factories import remove_access
from tests.statements import counting_statements

HOSTILE = '"><img src=x onerror=alert(1)>'
CONSOLE_ROUTES = ["/console/", "/console/counts", "/console/audit", "/console/audit.csv"]


def log_in_admin(client: FlaskClient, org: Organisation) -> User:
    admin = make_user(org, profile=Profile.ADMINISTRATOR)
    response = login(client, admin.user_id, door="console")
    assert response.status_code == 302
    return admin


def sweep() -> None:
    with write_transaction(db.session):
        nightly.sweep(now=clock.now(), today=clock.today())


def count_for(body: str, **params: Any) -> int:
    """The number shown in the link to ``/console/users?<params>``."""
    query = "&".join(f"{key}={value}" for key, value in params.items())
    href = escape(f"/console/users?{query}" if query else "/console/users")
    found = re.search(rf'href="{re.escape(href)}">(\d+)<', body)
    assert found is not None, f"no count linking to {href}"
    return int(found.group(1))


def build_mix(org: Organisation, prefix: str) -> None:
    """One organisation with every state (the Administrator is added by the test)."""
    now, today = clock.now(), clock.today()
    make_user(org, user_id=f"{prefix}-ok")  # has access
    lock_out(make_user(org, user_id=f"{prefix}-locked"))
    lock_out(make_user(org, user_id=f"{prefix}-locked2"))
    remove_access(make_user(org, user_id=f"{prefix}-removed"))
    make_user(org, user_id=f"{prefix}-inactive", created_at=now - timedelta(days=100))
    make_user(org, user_id=f"{prefix}-expired", expires_on=today - timedelta(days=1))
    make_user(org, user_id=f"{prefix}-exp10", expires_on=today + timedelta(days=10))
    make_user(org, user_id=f"{prefix}-exp30", expires_on=today + timedelta(days=30))
    make_user(org, user_id=f"{prefix}-exp31", expires_on=today + timedelta(days=31))
    make_user(org, user_id=f"{prefix}-dormant70", created_at=now - timedelta(days=70))
    make_user(org, user_id=f"{prefix}-recent59", created_at=now - timedelta(days=59))


def test_counts_by_state_reason_expiring_and_dormant(client: FlaskClient) -> None:
    org, other = make_org(), make_org()
    build_mix(org, "a")
    build_mix(other, "b")  # never counted
    remove_access(make_user(other, user_id="b-extra-removed"))
    sweep()  # inactivity (the 100-day user) and expiry (yesterday) in both organisations
    log_in_admin(client, org)

    response = client.get("/console/")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    # With access: admin, ok, exp10, exp30, exp31, dormant70, recent59.
    assert count_for(body, state="has_access") == 7
    assert count_for(body, state="system_disabled") == 4
    assert count_for(body, state="system_disabled", reason="lockout") == 2
    assert count_for(body, state="system_disabled", reason="inactivity") == 1
    assert count_for(body, state="system_disabled", reason="expiry") == 1
    assert count_for(body, state="access_removed") == 1
    assert count_for(body, expiring=30) == 2  # 10 and 30 days; not 31
    assert count_for(body, dormant=60) == 1  # 70 days; not 59, not the disabled inactive one
    assert count_for(body) == 12
    assert body.count("<h1") == 1
    assert "a-exp10" in body
    assert "a-exp30" in body
    assert "a-exp31" not in body
    assert "a-dormant70" in body
    for uid in ("b-ok", "b-exp10", "b-exp30", "b-dormant70"):
        assert uid not in body


def test_links_carry_the_users_list_query_strings(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    body = client.get("/console/").get_data(as_text=True)
    hrefs = set(re.findall(r'href="(/console/users[^"]*)"', body))
    assert {
        "/console/users?state=has_access",
        "/console/users?state=system_disabled",
        "/console/users?state=system_disabled&amp;reason=lockout",
        "/console/users?state=system_disabled&amp;reason=inactivity",
        "/console/users?state=system_disabled&amp;reason=expiry",
        "/console/users?state=access_removed",
        "/console/users?expiring=30",
        "/console/users?dormant=60",
    } <= hrefs
    assert 'href="/console/audit"' in body


def test_counts_fragment_is_only_the_section(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    lock_out(make_user(org))
    response = client.get("/console/counts", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    body = response.get_data(as_text=True).strip()
    assert body.startswith(
        '<section id="user-counts" hx-get="/console/counts" '
        'hx-trigger="users-changed from:body" hx-target="this" hx-swap="outerHTML" '
        'aria-live="polite"'
    )
    assert body.endswith("</section>")
    assert body.count("<section") == 1
    assert "<html" not in body
    assert "<h1" not in body
    assert count_for(body, state="system_disabled", reason="lockout") == 1
    # The full page embeds the very same fragment.
    page = client.get("/console/").get_data(as_text=True)
    assert page.count('id="user-counts"') == 1


def test_page_is_accessible_and_csp_safe(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    make_user(org, expires_on=clock.today() + timedelta(days=3))
    make_user(org, created_at=clock.now() - timedelta(days=61))
    body = client.get("/console/").get_data(as_text=True)
    assert body.count("<table") == body.count("<caption>") == 4
    assert len(re.findall(r"<th[ >]", body)) == body.count("scope=")
    assert "style=" not in body
    assert "<script>" not in body
    assert " on" + "click=" not in body


def test_hostile_full_name_is_escaped_on_the_dashboard(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    user = make_user(org, expires_on=clock.today() + timedelta(days=5))
    user = refresh(user)
    with write_transaction(db.session):
        user.full_name = HOSTILE
    body = client.get("/console/").get_data(as_text=True)
    assert HOSTILE not in body
    assert "<img" not in body
    assert str(markupsafe.escape(HOSTILE)) in body


def test_counts_module_agrees_with_the_rules_in_a_fixed_number_of_queries(app: Any) -> None:
    org = make_org()
    build_mix(org, "c")
    sweep()
    result = counts.user_counts(org.id)
    assert result.has_access == 6
    assert (result.lockout, result.inactivity, result.expiry) == (2, 1, 1)
    assert result.system_disabled == 4
    assert result.access_removed == 1
    assert result.by_reason(counts.Reason.LOCKOUT) == 2
    assert [u.user_id for u in counts.next_expiring(org.id)] == ["c-exp10", "c-exp30"]
    assert [u.user_id for u in counts.longest_dormant(org.id)] == ["c-dormant70"]
    assert counts.user_counts(make_org().id) == counts.UserCounts(0, 0, 0, 0, 0, 0, 0, 0)


def test_lists_show_at_most_ten_in_order(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    today = clock.today()
    for days in range(12, 0, -1):
        make_user(org, user_id=f"soon{days:02d}", expires_on=today + timedelta(days=days))
    listed = counts.next_expiring(org.id)
    assert [u.user_id for u in listed] == [f"soon{d:02d}" for d in range(1, 11)]
    body = client.get("/console/").get_data(as_text=True)
    assert "soon10" in body
    assert "soon11" not in body
    assert "See all 12 users expiring" in body


@pytest.mark.parametrize("path", CONSOLE_ROUTES)
def test_claims_handler_gets_403(client: FlaskClient, path: str) -> None:
    handler = make_user(make_org())
    login(client, handler.user_id)
    assert client.get(path).status_code == 403


@pytest.mark.parametrize("path", CONSOLE_ROUTES)
def test_anonymous_goes_to_the_console_login(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/console/login")


def queries_for_dashboard(client: FlaskClient, n_users: int) -> int:
    org = make_org()
    now, today = clock.now(), clock.today()
    for i in range(n_users):
        kind = i % 5
        if kind == 0:
            make_user(org, expires_on=today + timedelta(days=1 + i % 20))
        elif kind == 1:
            make_user(org, created_at=now - timedelta(days=61 + i % 20))
        elif kind == 2:
            lock_out(make_user(org))
        elif kind == 3:
            remove_access(make_user(org))
        else:
            make_user(org)
    log_in_admin(client, org)
    client.get("/console/")  # warm-up (first-use caches)
    with counting_statements() as page_statements:
        assert client.get("/console/").status_code == 200
    with counting_statements() as fragment_statements:
        assert client.get("/console/counts").status_code == 200
    return len(page_statements) * 1000 + len(fragment_statements)


def test_query_count_does_not_grow_with_users(client: FlaskClient, app: Any) -> None:
    few = queries_for_dashboard(client, 5)
    many = queries_for_dashboard(app.test_client(), 50)
    assert few == many

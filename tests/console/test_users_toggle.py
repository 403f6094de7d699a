"""The Console's inline Enabled toggle over HTTP (docs/rules.md §2 R4–R6, R8; docs/security.md
AC-03, AC-04, SE-01): removing access, refusals, idempotence, R5's three steps, R6, sessions
following the flags, and the same actions without JavaScript.

Runs on SQLite and, when PORTAL_TEST_DATABASE_URL is set, on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import markupsafe
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlalchemy import select

from portal import clock
from portal.accounts import management
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.extensions import db
from tests.console.users_helpers import CONFIRM
from tests.console.users_helpers import HX
from tests.console.users_helpers import ROW_IDS
from tests.console.users_helpers import active_box
from tests.console.users_helpers import checkbox
from tests.console.users_helpers import flags
from tests.console.users_helpers import log_in_admin
from tests.console.users_helpers import set_expiry
from tests.console.users_helpers import sweep
from tests.console.users_helpers import toggle
from tests.factories import lock_out
from tests.factories import login
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import refresh
from tests.factories import remove_access
from tests.helpers import audit_events

# --- R4: removing access inline ------------------------------------------------------------


def test_r4_remove_another_users_access_inline(client: FlaskClient) -> None:
    org = make_org()
    admin = log_in_admin(client, org)
    handler = make_user(org)

    page = client.get("/console/users").get_data(as_text=True)
    # The question is said once, on the table; a box with access asks it (no "unset").
    assert re.search(f'<tbody id="user-rows"[^>]* hx-confirm="{re.escape(CONFIRM)}"', page)
    assert "hx-confirm" not in checkbox(page, handler)
    assert "checked" in active_box(page, handler)

    response = toggle(client, handler, "false")
    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == "users-changed"
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith(f'<tr id="user-{handler.id}"')
    assert len(ROW_IDS.findall(body)) == 1
    assert "checked" not in checkbox(body, handler)
    assert 'hx-confirm="unset"' in checkbox(body, handler)  # re-checking asks nothing
    assert "checked" not in active_box(body, handler)
    assert "Access removed" in body
    assert f"by {admin.user_id}" in body
    announcer = re.search(r'<div id="announcer" hx-swap-oob="innerHTML"[^>]*>([^<]*)</div>', body)
    assert announcer is not None
    assert f"Access removed for {handler.user_id}" in announcer.group(1)

    assert flags(handler) == (False, False, None)
    removed = audit_events(handler, "access_removed")
    assert len(removed) == 1
    assert removed[0].actor == admin.user_id
    assert removed[0].actor_id == admin.id
    assert removed[0].subject == handler.user_id
    assert removed[0].organisation_id == org.id
    assert abs(removed[0].occurred_at - clock.now()) < timedelta(minutes=1)


def test_r4_a_second_administrators_access_can_be_removed(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    other_admin = make_user(org, profile=Profile.ADMINISTRATOR)
    response = toggle(client, other_admin, "false")
    assert response.status_code == 200
    assert flags(other_admin) == (False, False, None)


def test_r4_own_access_is_refused_with_422_and_the_row(client: FlaskClient) -> None:
    org = make_org()
    admin = log_in_admin(client, org)
    make_user(org, profile=Profile.ADMINISTRATOR)  # not the last one: still refused

    response = toggle(client, admin, "false")
    assert response.status_code == 422
    assert "HX-Trigger" not in response.headers
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith(f'<tr id="user-{admin.id}"')
    assert f'id="user-{admin.id}-error"' in body
    assert "You cannot remove your own access." in body
    assert 'aria-invalid="true"' in checkbox(body, admin)
    assert "checked" in checkbox(body, admin)  # the row shows the state the server has
    assert flags(admin) == (True, True, None)
    refused = audit_events(admin, "remove_refused")
    assert [e.reason for e in refused] == ["refused_self"]
    assert client.get("/console/users").status_code == 200  # still logged in


def test_r4_a_lone_administrator_is_refused_its_own_access(client: FlaskClient) -> None:
    org = make_org()
    admin = log_in_admin(client, org)
    make_user(org)
    response = toggle(client, admin, "false")
    assert response.status_code == 422
    assert flags(admin) == (True, True, None)


@pytest.mark.parametrize("action", ["remove", "demote"])
def test_r4_two_administrators_acting_on_each_other_at_once_keep_one(
    app: Flask, monkeypatch: pytest.MonkeyPatch, action: str
) -> None:
    """The last-Administrator rule under concurrency: A removes (or demotes) B while B removes
    (or demotes) A.  Each request must see the other's change, or the firm locks itself out."""
    org = make_org()
    first, second = app.test_client(), app.test_client()
    a = log_in_admin(first, org)
    b = log_in_admin(second, org)

    barrier = threading.Barrier(2, timeout=1.5)
    real = management.is_last_admin_with_access

    def meet_then_check(user: User, **when: Any) -> bool:
        answer = real(user, **when)
        # Both requests count before either commits, when the database lets them (PostgreSQL);
        # on SQLite the second waits for the write lock and the barrier times out.
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()
        return answer

    monkeypatch.setattr(management, "is_last_admin_with_access", meet_then_check)

    # Plain values: the worker threads must not touch this thread's database session.
    targets = [
        (pk, {"full_name": name, "email": email, "profile": "claims_handler"})
        for pk, name, email in ((b.id, b.full_name, b.email), (a.id, a.full_name, a.email))
    ]

    def act(client: FlaskClient, target: tuple[int, dict[str, str]]) -> int:
        pk, data = target
        if action == "remove":
            return toggle(client, pk, "false").status_code
        return client.post(f"/console/users/{pk}", data=data).status_code

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(act, (first, second), targets))
    assert len(results) == 2
    assert max(results) < 500  # e.g. no deadlock between the two row locks
    db.session.rollback()
    admins_with_access = db.session.scalar(
        select(func.count())
        .select_from(User)
        .where(
            User.organisation_id == org.id,
            User.profile == Profile.ADMINISTRATOR.value,
            User.enabled.is_(True),
        )
    )
    assert admins_with_access == 1


def test_r4_idempotent_removing_twice_changes_once(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    handler = make_user(org)

    first = toggle(client, handler, "false")
    second = toggle(client, handler, "false")
    assert first.status_code == 200
    assert second.status_code == 200
    assert first.headers["HX-Trigger"] == "users-changed"
    assert "HX-Trigger" not in second.headers  # nothing changed, nothing to refresh
    assert "checked" not in checkbox(second.get_data(as_text=True), handler)
    assert flags(handler) == (False, False, None)
    assert len(audit_events(handler, "access_removed")) == 1


def test_r4_parallel_removals_change_once(app: Flask) -> None:
    org = make_org()
    admin = make_user(org, profile=Profile.ADMINISTRATOR)
    handler = make_user(org)
    clients = [app.test_client() for _ in range(6)]
    for c in clients:
        assert login(c, admin.user_id, door="console").status_code == 302
    pk = handler.id
    with ThreadPoolExecutor(len(clients)) as pool:
        statuses = list(pool.map(lambda c: toggle(c, pk, "false").status_code, clients))
    assert statuses == [200] * len(clients)
    assert flags(handler) == (False, False, None)
    assert len(audit_events(handler, "access_removed")) == 1


# --- R5 and R6 -----------------------------------------------------------------------------


def test_r5_three_steps_on_a_locked_out_user(client: FlaskClient) -> None:
    org = make_org()
    admin = log_in_admin(client, org)
    handler = lock_out(make_user(org))
    assert flags(handler) == (False, True, "lockout")
    page = client.get("/console/users").get_data(as_text=True)
    assert "checked" not in checkbox(page, handler)
    assert "checked" in active_box(page, handler)

    # Step 1: Enabled is already unchecked; unchecking it again changes nothing.
    step1 = toggle(client, handler, "false")
    assert step1.status_code == 200
    assert "HX-Trigger" not in step1.headers
    assert flags(handler) == (False, True, "lockout")
    assert "Locked out" in step1.get_data(as_text=True)

    # Step 2: check Enabled: access returns, reason and failures cleared.
    step2 = toggle(client, handler, "true")
    assert step2.status_code == 200
    assert step2.headers["HX-Trigger"] == "users-changed"
    body = step2.get_data(as_text=True)
    assert "checked" in checkbox(body, handler)
    assert "hx-confirm" not in checkbox(body, handler)  # asks the table's question again
    assert f"Access restored for {handler.user_id}" in body
    assert flags(handler) == (True, True, None)
    assert refresh(handler).failed_attempts == 0
    enabled = audit_events(handler, "enabled")
    assert [e.actor for e in enabled] == [admin.user_id]

    # Step 3: uncheck it again (confirmed): both flags unchecked.
    step3 = toggle(client, handler, "false")
    assert step3.status_code == 200
    assert "checked" not in active_box(step3.get_data(as_text=True), handler)
    assert flags(handler) == (False, False, None)
    assert [e.actor for e in audit_events(handler, "access_removed")] == [admin.user_id]


def test_r6_expired_user_needs_a_new_expiry_date_first(client: FlaskClient) -> None:
    org = make_org()
    admin = log_in_admin(client, org)
    handler = make_user(org, expires_on=clock.today() - timedelta(days=1))
    sweep()
    assert flags(handler) == (False, True, "expiry")

    refused = toggle(client, handler, "true")
    assert refused.status_code == 422
    assert "HX-Trigger" not in refused.headers
    body = refused.get_data(as_text=True)
    assert body.lstrip().startswith(f'<tr id="user-{handler.id}"')
    assert "extend the expiry date first" in body
    assert f'href="/console/users/{handler.id}#expiry"' in body
    assert "checked" not in checkbox(body, handler)
    assert flags(handler) == (False, True, "expiry")
    assert [e.reason for e in audit_events(handler, "enable_refused")] == ["refused_expired"]

    new_date = clock.today() + timedelta(days=90)
    extended = set_expiry(client, handler, new_date)
    assert extended.status_code == 200
    assert extended.headers["HX-Trigger"] == "users-changed"
    assert refresh(handler).expires_on == new_date
    assert flags(handler) == (False, True, "expiry")  # a new date alone does not give access

    again = toggle(client, handler, "true")
    assert again.status_code == 200
    assert flags(handler) == (True, True, None)
    assert [e.actor for e in audit_events(handler, "enabled")] == [admin.user_id]


def test_r6_reenabling_restarts_the_inactivity_clock(app: Flask, client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    handler = make_user(org, created_at=clock.now() - timedelta(days=100))
    sweep()
    assert flags(handler) == (False, True, "inactivity")

    assert toggle(client, handler, "true").status_code == 200
    fresh = refresh(handler)
    assert fresh.enabled
    assert abs(fresh.access_granted_at - clock.now()) < timedelta(minutes=1)
    assert abs(fresh.last_use_at - clock.now()) < timedelta(minutes=1)

    theirs = app.test_client()
    response = login(theirs, handler.user_id)
    assert response.status_code == 302
    assert response.headers["Location"] == "/portal/"
    assert theirs.get("/portal/").status_code == 200


def test_r6_reenabling_after_access_removed(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    handler = remove_access(make_user(org))
    response = toggle(client, handler, "true")
    assert response.status_code == 200
    assert flags(handler) == (True, True, None)


# --- R8: sessions follow the flags -----------------------------------------------------------


def test_r8_removed_handler_loses_its_sessions_at_the_next_request(
    app: Flask, client: FlaskClient
) -> None:
    org = make_org()
    log_in_admin(client, org)
    handler = make_user(org)
    page_client, htmx_client = app.test_client(), app.test_client()
    for c in (page_client, htmx_client):
        assert login(c, handler.user_id).status_code == 302
        assert c.get("/portal/").status_code == 200

    assert toggle(client, handler, "false").status_code == 200

    page = page_client.get("/portal/")
    assert page.status_code == 302
    assert page.headers["Location"].startswith("/portal/login")
    hx = htmx_client.get("/portal/", headers=HX)
    assert hx.status_code != 302
    assert hx.headers["HX-Redirect"].startswith("/portal/login")


def test_r8_removed_administrator_gets_hx_redirect_in_the_console(
    app: Flask, client: FlaskClient
) -> None:
    org = make_org()
    log_in_admin(client, org)
    other = make_user(org, profile=Profile.ADMINISTRATOR)
    victim = make_user(org)
    theirs = app.test_client()
    assert login(theirs, other.user_id, door="console").status_code == 302
    assert theirs.get("/console/users").status_code == 200

    assert toggle(client, other, "false").status_code == 200

    hx = theirs.post(f"/console/users/{victim.id}/enabled", data={"enabled": "false"}, headers=HX)
    assert hx.status_code != 302
    assert hx.headers["HX-Redirect"].startswith("/console/login")
    assert flags(victim) == (True, True, None)  # the ended session changed nothing
    page = theirs.get("/console/users")
    assert page.status_code == 302
    assert page.headers["Location"].startswith("/console/login")


# --- the same actions without JavaScript -----------------------------------------------------


def test_no_js_removal_asks_on_a_page_then_redirects_back_with_a_flash(
    client: FlaskClient,
) -> None:
    org = make_org()
    log_in_admin(client, org)
    handler = make_user(org)
    back = "/console/users?q=user&page=1"

    ask = toggle(client, handler, "false", hx=False, next=back)
    assert ask.status_code == 200
    body = ask.get_data(as_text=True)
    assert f"<h1>{CONFIRM}</h1>" in body
    assert 'name="confirmed" value="yes"' in body
    assert f'href="{markupsafe.escape(back)}">Cancel</a>' in body
    assert flags(handler) == (True, True, None)  # asking changes nothing
    assert audit_events(handler, "access_removed") == []

    done = toggle(client, handler, "false", hx=False, confirmed="yes", next=back)
    assert done.status_code == 302
    assert done.headers["Location"] == back
    assert flags(handler) == (False, False, None)
    shown = client.get(back).get_data(as_text=True)
    assert f"Access removed for {handler.user_id}" in shown

    enable = toggle(client, handler, "true", hx=False, next=back)
    assert enable.status_code == 302
    assert flags(handler) == (True, True, None)
    assert f"Access restored for {handler.user_id}" in client.get(back).get_data(as_text=True)


def test_no_js_buttons_post_one_form_per_table_named_by_user(client: FlaskClient) -> None:
    """Without JavaScript each row's button submits the one form around the table (its CSRF
    token and ``next``), named remove/enable and valued by the user's id (issue 12 point 6)."""
    org = make_org()
    log_in_admin(client, org)
    handler = make_user(org)
    stranger = make_user(make_org())
    page = client.get("/console/users?q=user").get_data(as_text=True)
    form = re.search(r'<form id="toggle-form"[^>]*action="([^"]+)"[^>]*>(.*?)</form>', page, re.S)
    assert form is not None
    assert form.group(1) == "/console/users/enabled"
    assert 'name="csrf_token"' in form.group(2)
    assert '<input type="hidden" name="next" value="/console/users?q=user">' in form.group(2)
    assert f'<button name="remove" value="{handler.id}"' in form.group(2)
    assert page.count('name="csrf_token"') < 8  # not one per row

    back = "/console/users?q=user"
    ask = client.post("/console/users/enabled", data={"remove": str(handler.id), "next": back})
    assert ask.status_code == 200
    assert f"<h1>{CONFIRM}</h1>" in ask.get_data(as_text=True)
    assert flags(handler) == (True, True, None)  # asking changes nothing
    done = toggle(client, handler, "false", hx=False, confirmed="yes", next=back)
    assert done.headers["Location"] == back
    assert flags(handler) == (False, False, None)
    page = client.get(back).get_data(as_text=True)
    assert f'<button name="enable" value="{handler.id}"' in page
    enable = client.post("/console/users/enabled", data={"enable": str(handler.id), "next": back})
    assert enable.status_code == 302
    assert enable.headers["Location"] == back
    assert flags(handler) == (True, True, None)

    assert client.post("/console/users/enabled", data={"next": back}).status_code == 400
    # Another organisation's user does not exist here (docs/security.md AC-02).
    for name in ("remove", "enable"):
        other = client.post("/console/users/enabled", data={name: str(stranger.id)})
        assert other.status_code == 404
    assert flags(stranger) == (True, True, None)


def test_no_js_refusal_is_flashed(client: FlaskClient) -> None:
    org = make_org()
    admin = log_in_admin(client, org)
    response = toggle(client, admin, "false", hx=False, confirmed="yes")
    assert response.status_code == 302
    assert response.headers["Location"] == "/console/users"
    assert "You cannot remove your own access." in client.get("/console/users").get_data(
        as_text=True
    )
    assert flags(admin) == (True, True, None)


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/console/users",
        "//evil.example/console/users",
        "/portal/",
        "javascript:alert(1)",
    ],
)
def test_no_js_redirect_stays_in_the_console(client: FlaskClient, target: str) -> None:
    org = make_org()
    log_in_admin(client, org)
    handler = make_user(org)
    response = toggle(client, handler, "false", hx=False, confirmed="yes", next=target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/console/users"


@pytest.mark.parametrize("data", [{"enabled": "yes"}, {"enabled": ""}, {}, {"enabled": "TRUE"}])
def test_toggle_needs_true_or_false(client: FlaskClient, data: dict[str, str]) -> None:
    org = make_org()
    log_in_admin(client, org)
    handler = make_user(org)
    response = client.post(f"/console/users/{handler.id}/enabled", data=data, headers=HX)
    assert response.status_code == 400
    assert flags(handler) == (True, True, None)


def test_toggle_is_post_only(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    handler = make_user(org)
    assert client.get(f"/console/users/{handler.id}/enabled?enabled=false").status_code == 405
    assert flags(handler) == (True, True, None)

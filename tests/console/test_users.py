"""The Console's users area over HTTP (docs/rules.md §2 R4–R6, R8, R9 and §4; docs/security.md
AC-02..AC-04, SE-01, SE-08, CP-04): the list (isolation, paging, search, filters, sorts, the HTMX
fragment), the inline Enabled toggle (R4, R5, R6, refusals, idempotence, the no-JS flow), creating a
user, a user's page (details, expiry, one-time password, sign out everywhere), escaping, and a query
count that does not grow with the rows shown.

Runs on SQLite and, when PORTAL_TEST_DATABASE_URL is set, on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from datetime import datetime
from datetime import timedelta
from typing import Any

import markupsafe
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlalchemy import select
from werkzeug.test import TestResponse

from portal import clock
from portal.accounts import management
from portal.accounts import rules
from portal.accounts import service
from portal.accounts.models import Organisation
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.audit.models import AuditEvent
from portal.db import write_transaction
from portal.extensions import db
from portal.jobs import nightly
from tests.factories import PASSWORD
from tests.factories import apply
from tests.factories import lock_out
from tests.factories import login
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import refresh
from tests.factories import remove_access
from tests.statements import counting_statements

CONFIRM = "Are you sure you want to remove this User’s access?"
HOSTILE = '"><img src=x onerror=alert(1)>'
HX = {"HX-Request": "true"}
HX_RESULTS = {"HX-Request": "true", "HX-Target": "user-results"}
ROW_IDS = re.compile(r'<tr id="user-(\d+)"')
ROW_USER_IDS = re.compile(r'id="user-\d+-name" href="[^"]*">([^<]*)</a>')
OTP = re.compile(r"<code>([^<]+)</code>")


# --- helpers -----------------------------------------------------------------------------


def log_in_admin(client: FlaskClient, org: Organisation, user_id: str | None = None) -> User:
    admin = make_user(org, user_id=user_id, profile=Profile.ADMINISTRATOR)
    response = login(client, admin.user_id, door="console")
    assert response.status_code == 302
    assert response.headers["Location"] == "/console/"
    return admin


def add_users(org: Organisation, count: int, prefix: str) -> list[User]:
    """``count`` Claims Handlers in one transaction (through the service, like the factory)."""
    now = clock.now()
    expiry = clock.today() + timedelta(days=365)
    with write_transaction(db.session):
        users = [
            service.create_user(
                user_id=f"{prefix}{n:03d}",
                full_name=f"Person {prefix}{n:03d}",
                email=f"{prefix}{n:03d}@example.com",
                profile=Profile.CLAIMS_HANDLER,
                organisation=org,
                expires_on=expiry,
                actor=None,
                now=now,
                password=PASSWORD,
            )[0]
            for n in range(count)
        ]
    return users


def rename(user: User, full_name: str) -> User:
    user = refresh(user)
    with write_transaction(db.session):
        user.full_name = full_name
    return refresh(user)


def sweep() -> None:
    with write_transaction(db.session):
        nightly.sweep(now=clock.now(), today=clock.today())


def events(kind: str, subject: User | None = None) -> list[AuditEvent]:
    db.session.rollback()
    stmt = select(AuditEvent).where(AuditEvent.kind == kind)
    if subject is not None:
        stmt = stmt.where(AuditEvent.subject_id == subject.id)
    return list(db.session.scalars(stmt.order_by(AuditEvent.id)))


def user_count() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(User)) or 0


def toggle(
    client: FlaskClient, user: User | int, enabled: str, *, hx: bool = True, **extra: str
) -> TestResponse:
    pk = user if isinstance(user, int) else user.id
    return client.post(
        f"/console/users/{pk}/enabled",
        data={"enabled": enabled, **extra},
        headers=HX if hx else {},
    )


def set_expiry(client: FlaskClient, user: User, value: date | str, *, hx: bool = True) -> Any:
    text = value.isoformat() if isinstance(value, date) else value
    return client.post(
        f"/console/users/{user.id}/expiry", data={"expires_on": text}, headers=HX if hx else {}
    )


def listed(client: FlaskClient, query: str = "") -> list[str]:
    """The User IDs in the list's rows, in order."""
    response = client.get(f"/console/users{query}", headers=HX_RESULTS)
    assert response.status_code == 200
    return ROW_USER_IDS.findall(response.get_data(as_text=True))


def checkbox(body: str, user: User) -> str:
    """The Enabled checkbox of ``user``'s row."""
    found = re.search(rf'<input type="checkbox" id="enabled-{user.id}"[^>]*>', body)
    assert found is not None, f"no Enabled checkbox for {user.user_id}"
    return found.group(0)


def active_box(body: str, user: User) -> str:
    label = f'aria-label="Active: {user.user_id}"'
    found = re.search(rf'<input type="checkbox" disabled[^>]*{re.escape(label)}>', body)
    assert found is not None, f"no Active checkbox for {user.user_id}"
    return found.group(0)


def one_time_password(response: TestResponse) -> str:
    found = OTP.findall(response.get_data(as_text=True))
    assert len(found) == 1
    return found[0]


def flags(user: User) -> tuple[bool, bool, str | None]:
    fresh = refresh(user)
    return fresh.enabled, fresh.active, fresh.disabled_reason


def past_login(user: User, when: datetime) -> None:
    """A successful login at ``when`` (through the rules)."""
    user = refresh(user)
    apply(
        user,
        rules.login_attempt(
            user.to_state(), password_ok=True, now=when, today=clock.local_date(when)
        ),
    )


# --- the list ----------------------------------------------------------------------------


def test_list_shows_only_the_organisations_users(client: FlaskClient) -> None:
    org, other = make_org(), make_org()
    admin = log_in_admin(client, org)
    mine = make_user(org, user_id="mine.handler")
    theirs = make_user(other, user_id="theirs.handler")
    make_user(other, user_id="theirs.admin", profile=Profile.ADMINISTRATOR)
    make_user(None, user_id="operator.helpdesk", profile=Profile.HELPDESK)

    response = client.get("/console/users")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert set(ROW_USER_IDS.findall(body)) == {admin.user_id, mine.user_id}
    assert f'id="user-{theirs.id}"' not in body
    assert "theirs.admin" not in body
    assert "operator.helpdesk" not in body
    # Not even a search for them finds them.
    assert listed(client, "?q=theirs") == []
    assert listed(client, "?q=operator") == []


def test_fifty_a_page_and_page_two_works(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org, user_id="zz.admin")  # sorts last
    add_users(org, 60, "p")

    first = client.get("/console/users").get_data(as_text=True)
    assert len(ROW_IDS.findall(first)) == 50
    assert "61 users" in first
    assert "Page 1 of 2" in first
    assert 'rel="next" href="/console/users?page=2"' in first
    assert ROW_USER_IDS.findall(first)[0] == "p000"
    assert ROW_USER_IDS.findall(first)[-1] == "p049"

    second = client.get("/console/users?page=2")
    assert second.status_code == 200
    body = second.get_data(as_text=True)
    assert ROW_USER_IDS.findall(body) == [*(f"p{n:03d}" for n in range(50, 60)), "zz.admin"]
    assert "Page 2 of 2" in body
    assert 'rel="prev" href="/console/users"' in body
    assert 'rel="next"' not in body

    # The HTMX pager asks for the fragment: the same rows.
    assert listed(client, "?page=2") == ROW_USER_IDS.findall(body)
    # A page beyond the last shows the last page, not an empty one or an error.
    assert listed(client, "?page=9") == ROW_USER_IDS.findall(body)


def test_search_by_user_id_name_or_email_ignores_case(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org, user_id="boss")
    alice = make_user(org, user_id="alice.smith", email="asmith@firm.example")
    rename(alice, "Alice Smith")
    bob = make_user(org, user_id="bob.j", email="RJ@other.example")
    rename(bob, "Robert Jones")

    assert listed(client, "?q=ALICE") == ["alice.smith"]
    assert listed(client, "?q=Smi") == ["alice.smith"]  # name
    assert listed(client, "?q=jOnEs") == ["bob.j"]  # name, any case
    assert listed(client, "?q=FIRM.example") == ["alice.smith"]  # email
    assert listed(client, "?q=rj%40other") == ["bob.j"]  # email, stored as typed
    assert listed(client, "?q=%20bob.J%20") == ["bob.j"]  # trimmed
    assert listed(client, "?q=nobody-like-this") == []
    body = client.get("/console/users?q=nobody-like-this").get_data(as_text=True)
    assert "No users match." in body
    assert "0 users" in body
    # The search box keeps what was typed.
    page = client.get("/console/users?q=ALICE").get_data(as_text=True)
    assert 'id="q" name="q" value="ALICE"' in page


@pytest.mark.parametrize(
    ("full_name", "typed"),
    [
        pytest.param("Élodie Durand", "Élodie", id="E-acute-as-shown"),
        pytest.param("Élodie Durand", "élodie", id="E-acute-lower-case"),
        pytest.param("Jürgen Strauß", "Strauß", id="sharp-s-as-shown"),
        pytest.param("ZOË ADAMS", "zoë", id="E-diaeresis-lower-case"),
    ],
)
def test_search_finds_names_with_accents_as_shown(
    client: FlaskClient, full_name: str, typed: str
) -> None:
    """A name is found by typing it as it is shown (casefold on one side, SQL lower() on the
    other disagree: SQLite's lower() is ASCII-only, and no lower() turns ß into ss)."""
    org = make_org()
    log_in_admin(client, org, user_id="boss")
    rename(make_user(org, user_id="the.one"), full_name)
    assert listed(client, f"?q={typed}") == ["the.one"]


def test_search_takes_percent_and_underscore_literally(client: FlaskClient) -> None:
    """User IDs may contain ``_``; a search for it must not act as a LIKE wildcard."""
    org = make_org()
    log_in_admin(client, org, user_id="boss")
    make_user(org, user_id="ann_lee")
    make_user(org, user_id="annxlee")
    assert listed(client, "?q=ann_lee") == ["ann_lee"]
    assert listed(client, "?q=%25") == []  # "%" is in no User ID, name or email


def build_mix(org: Organisation) -> None:
    now, today = clock.now(), clock.today()
    make_user(org, user_id="f-ok")
    make_user(org, user_id="f-admin2", profile=Profile.ADMINISTRATOR)
    lock_out(make_user(org, user_id="f-locked"))
    remove_access(make_user(org, user_id="f-removed"))
    make_user(org, user_id="f-inactive", created_at=now - timedelta(days=100))
    make_user(org, user_id="f-expired", expires_on=today - timedelta(days=1))
    make_user(org, user_id="f-exp10", expires_on=today + timedelta(days=10))
    make_user(org, user_id="f-dormant70", created_at=now - timedelta(days=70))
    sweep()


def test_filters_by_profile_state_reason_expiring_and_dormant(client: FlaskClient) -> None:
    org = make_org()
    build_mix(org)
    log_in_admin(client, org, user_id="f-boss")
    handlers = {"f-ok", "f-locked", "f-removed", "f-inactive", "f-expired", "f-exp10"}
    cases = {
        "": {"f-boss", "f-admin2", "f-dormant70", *handlers},
        "?profile=administrator": {"f-boss", "f-admin2"},
        "?profile=claims_handler": {"f-dormant70", *handlers},
        "?state=has_access": {"f-boss", "f-admin2", "f-ok", "f-exp10", "f-dormant70"},
        "?state=system_disabled": {"f-locked", "f-inactive", "f-expired"},
        "?state=access_removed": {"f-removed"},
        "?state=system_disabled&reason=lockout": {"f-locked"},
        "?state=system_disabled&reason=inactivity": {"f-inactive"},
        "?reason=expiry": {"f-expired"},
        "?expiring=30": {"f-exp10"},
        "?dormant=60": {"f-dormant70"},
        "?profile=claims_handler&state=has_access": {"f-ok", "f-exp10", "f-dormant70"},
        "?q=f-ex&state=system_disabled": {"f-expired"},
    }
    found = {query: set(listed(client, query)) for query in cases}
    assert found == cases

    # The reason is shown with who disabled the user and when.
    body = client.get("/console/users?state=system_disabled").get_data(as_text=True)
    assert "Locked out" in body
    assert "Inactive 90+ days" in body
    assert "Expiry date reached" in body
    assert "by system" in body


def test_sorts(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org, user_id="boss")
    today, now = clock.today(), clock.now()
    b = make_user(org, user_id="s-b", expires_on=today + timedelta(days=10))
    a = make_user(org, user_id="S-A", expires_on=today + timedelta(days=30))
    make_user(org, user_id="s-c", expires_on=today + timedelta(days=20))
    past_login(b, now - timedelta(days=3))
    past_login(a, now - timedelta(days=1))

    cases = {
        "": ["S-A", "s-b", "s-c"],  # by User ID, ignoring case
        "&sort=user_id": ["S-A", "s-b", "s-c"],
        "&sort=-user_id": ["s-c", "s-b", "S-A"],
        "&sort=expiry": ["s-b", "s-c", "S-A"],
        "&sort=-expiry": ["S-A", "s-c", "s-b"],
        "&sort=last_login": ["s-b", "S-A", "s-c"],  # never logged in: last
        "&sort=-last_login": ["S-A", "s-b", "s-c"],  # never logged in: still last
    }
    found = {query: listed(client, f"?q=s-{query}") for query in cases}
    assert found == cases

    body = client.get("/console/users?sort=-expiry").get_data(as_text=True)
    assert 'aria-sort="descending"' in body
    assert 'name="sort" value="-expiry"' in body


BAD_QUERIES = {
    "?state=bogus": "Unknown state",
    "?profile=portal_team": "Unknown profile",
    "?reason=boredom": "Unknown reason",
    "?sort=password_hash": "Unknown sort",
    "?sort=-": "Unknown sort",
    "?page=abc": "page must be a whole number",
    "?page=0": "page must be a whole number",
    "?page=-1": "page must be a whole number",
    "?page=99999999999999999999999": "page must be a whole number",
    "?page=%C2%B2": "page must be a whole number",  # "²": str.isdigit() is True, int() fails
    "?expiring=-5": "expiring must be a whole number",
    "?expiring=1e3": "expiring must be a whole number",
    "?dormant=lots": "dormant must be a whole number",
    "?dormant=99999999": "dormant must be a whole number",
}


def test_bad_query_values_give_a_message_not_a_500(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    make_user(org)
    statuses: dict[str, int] = {}
    shown: dict[str, bool] = {}
    for query, message in BAD_QUERIES.items():
        for headers in ({}, HX_RESULTS):
            response = client.get(f"/console/users{query}", headers=headers)
            statuses[query] = max(statuses.get(query, 0), response.status_code)
            shown[query] = shown.get(query, True) and message in response.get_data(as_text=True)
    assert statuses == dict.fromkeys(BAD_QUERIES, 200)
    assert shown == dict.fromkeys(BAD_QUERIES, True)


@pytest.mark.parametrize(
    "query",
    [
        "?q=%00",  # PostgreSQL refuses NUL characters in text
        "?q=" + "x" * 5000,
        "?q=%FF%FE",  # not UTF-8
        "?q=%25%5F%5C",  # % _ \
        "?q=%27%3B--",  # ';--
    ],
)
def test_odd_searches_never_give_a_500(client: FlaskClient, query: str) -> None:
    org = make_org()
    log_in_admin(client, org)
    for headers in ({}, HX_RESULTS):
        response = client.get(f"/console/users{query}", headers=headers)
        assert response.status_code == 200


def test_htmx_target_gets_only_the_results_fragment(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org, user_id="boss")
    make_user(org, user_id="frag.user")

    fragment = client.get("/console/users?q=frag", headers=HX_RESULTS)
    assert fragment.status_code == 200
    body = fragment.get_data(as_text=True).strip()
    assert body.startswith('<div id="user-results">')
    assert body.endswith("</div>")
    assert "<html" not in body
    assert "<body" not in body
    assert "<h1" not in body
    assert ROW_USER_IDS.findall(body) == ["frag.user"]
    assert {"HX-Request", "HX-Target"} <= set(fragment.vary)

    page = client.get("/console/users?q=frag")
    full = page.get_data(as_text=True)
    assert "<html" in full
    assert full.count('<div id="user-results">') == 1
    assert {"HX-Request", "HX-Target"} <= set(page.vary)
    # The search form updates the results in place and keeps the URL in step.
    assert 'hx-target="#user-results"' in full
    assert 'hx-push-url="true"' in full


# --- R4: removing access inline ------------------------------------------------------------


def test_r4_remove_another_users_access_inline(client: FlaskClient) -> None:
    org = make_org()
    admin = log_in_admin(client, org)
    handler = make_user(org)

    page = client.get("/console/users").get_data(as_text=True)
    assert f'hx-confirm="{CONFIRM}"' in checkbox(page, handler)
    assert "checked" in active_box(page, handler)

    response = toggle(client, handler, "false")
    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == "users-changed"
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith(f'<tr id="user-{handler.id}"')
    assert len(ROW_IDS.findall(body)) == 1
    assert "checked" not in checkbox(body, handler)
    assert "hx-confirm" not in checkbox(body, handler)  # re-checking asks nothing
    assert "checked" not in active_box(body, handler)
    assert "Access removed" in body
    assert f"by {admin.user_id}" in body
    announcer = re.search(r'<div id="announcer" hx-swap-oob="innerHTML"[^>]*>([^<]*)</div>', body)
    assert announcer is not None
    assert f"Access removed for {handler.user_id}" in announcer.group(1)

    assert flags(handler) == (False, False, None)
    removed = events("access_removed", handler)
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
    refused = events("remove_refused", admin)
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
    assert len(events("access_removed", handler)) == 1


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
    assert len(events("access_removed", handler)) == 1


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
    assert f'hx-confirm="{CONFIRM}"' in checkbox(body, handler)
    assert f"Access restored for {handler.user_id}" in body
    assert flags(handler) == (True, True, None)
    assert refresh(handler).failed_attempts == 0
    enabled = events("enabled", handler)
    assert [e.actor for e in enabled] == [admin.user_id]

    # Step 3: uncheck it again (confirmed): both flags unchecked.
    step3 = toggle(client, handler, "false")
    assert step3.status_code == 200
    assert "checked" not in active_box(step3.get_data(as_text=True), handler)
    assert flags(handler) == (False, False, None)
    assert [e.actor for e in events("access_removed", handler)] == [admin.user_id]


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
    assert [e.reason for e in events("enable_refused", handler)] == ["refused_expired"]

    new_date = clock.today() + timedelta(days=90)
    extended = set_expiry(client, handler, new_date)
    assert extended.status_code == 200
    assert extended.headers["HX-Trigger"] == "users-changed"
    assert refresh(handler).expires_on == new_date
    assert flags(handler) == (False, True, "expiry")  # a new date alone does not give access

    again = toggle(client, handler, "true")
    assert again.status_code == 200
    assert flags(handler) == (True, True, None)
    assert [e.actor for e in events("enabled", handler)] == [admin.user_id]


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
    assert events("access_removed", handler) == []

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


# --- creating a user -----------------------------------------------------------------------


def test_create_user_shows_the_one_time_password_once(app: Flask, client: FlaskClient) -> None:
    org = make_org()
    admin = log_in_admin(client, org)
    form = client.get("/console/users/new")
    assert form.status_code == 200
    default = (clock.today() + timedelta(days=app.config["PORTAL_DEFAULT_EXPIRY_DAYS"])).isoformat()
    assert f'value="{default}"' in form.get_data(as_text=True)

    expiry = clock.today() + timedelta(days=60)
    response = client.post(
        "/console/users/new",
        data={
            "user_id": "New.Person",
            "full_name": "New Person",
            "email": "new.person@example.com",
            "profile": "claims_handler",
            "expires_on": expiry.isoformat(),
        },
    )
    assert response.status_code == 200
    password = one_time_password(response)
    assert len(password) >= 16

    db.session.rollback()
    user = service.find_user("new.person")
    assert user is not None
    assert user.user_id == "New.Person"  # shown as entered
    assert user.organisation_id == org.id
    assert user.profile == "claims_handler"
    assert user.must_change_password
    assert user.enabled
    assert user.active
    assert user.expires_on == expiry
    created = events("user_created", user)
    assert [e.actor for e in created] == [admin.user_id]

    # Shown once: nowhere else.
    assert password not in client.get(f"/console/users/{user.id}").get_data(as_text=True)
    assert password not in client.get("/console/users").get_data(as_text=True)

    # It works, and forces a change at first login.
    theirs = app.test_client()
    first = login(theirs, "new.person", password)
    assert first.status_code == 302
    assert first.headers["Location"] == "/account/password"
    assert theirs.get("/portal/").headers["Location"] == "/account/password"


def test_create_user_lists_every_problem_at_once_and_stores_nothing(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    make_user(org, user_id="Taken.ID")
    before = user_count()
    created_before = len(events("user_created"))

    response = client.post(
        "/console/users/new",
        data={
            "user_id": "taken.id",
            "full_name": "Someone",
            "email": "not-an-email",
            "profile": "claims_handler",
            "expires_on": (clock.today() - timedelta(days=1)).isoformat(),
        },
    )
    assert response.status_code in (200, 422)
    body = response.get_data(as_text=True)
    assert "There is a problem" in body
    assert "already taken" in body
    assert "Enter an email address in the correct format" in body
    assert "The expiry date must be after today" in body
    assert 'id="user_id-error"' in body
    assert 'id="email-error"' in body
    assert 'id="expires_on-error"' in body
    assert 'value="taken.id"' in body  # what was typed is kept
    assert "<code>" not in body
    assert user_count() == before
    assert len(events("user_created")) == created_before


@pytest.mark.parametrize("field", ["user_id", "full_name", "email"])
def test_create_user_refuses_control_characters_without_a_500(
    client: FlaskClient, field: str
) -> None:
    """PostgreSQL refuses NUL in text: the form must refuse it first, by the field."""
    org = make_org()
    log_in_admin(client, org)
    before = user_count()
    data = {
        "user_id": "new.person",
        "full_name": "New Person",
        "email": "new@example.com",
        "profile": "claims_handler",
        "expires_on": (clock.today() + timedelta(days=30)).isoformat(),
    }
    data[field] = data[field][:3] + "\x00" + data[field][3:]
    response = client.post("/console/users/new", data=data)
    assert response.status_code in (200, 422)
    assert f'id="{field}-error"' in response.get_data(as_text=True)
    assert user_count() == before


def test_create_user_ignores_fields_it_does_not_offer(client: FlaskClient) -> None:
    """docs/security.md AC-02: no mass assignment of organisation, flags or profiles it does not
    offer."""
    org, other = make_org(), make_org()
    log_in_admin(client, org)
    base = {
        "user_id": "plain.user",
        "full_name": "Plain User",
        "email": "plain@example.com",
        "expires_on": (clock.today() + timedelta(days=30)).isoformat(),
    }
    refused = client.post("/console/users/new", data={**base, "profile": "portal_team"})
    assert "<code>" not in refused.get_data(as_text=True)
    assert service.find_user("plain.user") is None

    response = client.post(
        "/console/users/new",
        data={
            **base,
            "profile": "claims_handler",
            "organisation_id": str(other.id),
            "enabled": "false",
            "active": "false",
            "must_change_password": "false",
            "failed_attempts": "4",
        },
    )
    assert response.status_code == 200
    db.session.rollback()
    user = service.find_user("plain.user")
    assert user is not None
    assert user.organisation_id == org.id
    assert user.enabled
    assert user.active
    assert user.must_change_password
    assert user.failed_attempts == 0


# --- a user's page -------------------------------------------------------------------------


def test_user_page_details_are_saved_and_audited(client: FlaskClient) -> None:
    org = make_org()
    admin = log_in_admin(client, org)
    handler = make_user(org)
    page = client.get(f"/console/users/{handler.id}")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert f'<tr id="user-{handler.id}"' in body
    assert '<form id="expiry"' in body
    assert "Audit trail" in body

    response = client.post(
        f"/console/users/{handler.id}",
        data={
            "full_name": "Renamed Person",
            "email": "renamed@example.com",
            "profile": "administrator",
            "enabled": "false",  # not a field of this form: ignored
            "organisation_id": "999",
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"/console/users/{handler.id}"
    assert "Details saved." in client.get(f"/console/users/{handler.id}").get_data(as_text=True)
    fresh = refresh(handler)
    assert fresh.full_name == "Renamed Person"
    assert fresh.email == "renamed@example.com"
    assert fresh.profile == "administrator"
    assert fresh.enabled
    assert fresh.organisation_id == org.id
    changed = events("details_changed", handler)
    assert len(changed) == 1
    assert changed[0].actor == admin.user_id
    assert "Renamed Person" in (changed[0].details or "")
    assert "administrator" in (changed[0].details or "")


def test_user_page_bad_email_is_refused(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    handler = make_user(org)
    response = client.post(
        f"/console/users/{handler.id}",
        data={"full_name": "X", "email": "nope", "profile": "claims_handler"},
    )
    assert response.status_code == 422
    assert "Enter an email address in the correct format" in response.get_data(as_text=True)
    assert refresh(handler).email == handler.email
    assert events("details_changed", handler) == []


def test_user_page_demoting_oneself_is_refused_with_a_message(client: FlaskClient) -> None:
    """Demoting the last Administrator: over HTTP the acting Administrator is always one with
    access, so the last one can only be itself."""
    org = make_org()
    admin = log_in_admin(client, org)
    response = client.post(
        f"/console/users/{admin.id}",
        data={"full_name": admin.full_name, "email": admin.email, "profile": "claims_handler"},
    )
    assert response.status_code == 422
    assert "You cannot remove your own Administrator profile" in response.get_data(as_text=True)
    assert refresh(admin).profile == "administrator"
    assert events("details_changed", admin) == []


def test_user_page_demoting_another_administrator_is_allowed(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    other = make_user(org, profile=Profile.ADMINISTRATOR)
    response = client.post(
        f"/console/users/{other.id}",
        data={"full_name": other.full_name, "email": other.email, "profile": "claims_handler"},
    )
    assert response.status_code == 302
    assert refresh(other).profile == "claims_handler"


def test_expiry_inline_with_htmx(client: FlaskClient) -> None:
    org = make_org()
    admin = log_in_admin(client, org)
    handler = make_user(org)
    old = refresh(handler).expires_on
    new_date = clock.today() + timedelta(days=400)

    response = set_expiry(client, handler, new_date)
    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == "users-changed"
    body = response.get_data(as_text=True).strip()
    assert body.startswith('<form id="expiry"')
    assert "<html" not in body
    assert f'value="{new_date.isoformat()}"' in body
    assert f"Saved: access ends on {new_date.isoformat()}" in body
    assert refresh(handler).expires_on == new_date
    changed = events("expiry_changed", handler)
    assert len(changed) == 1
    assert changed[0].actor == admin.user_id
    assert changed[0].details == f"{old} -> {new_date}"


def test_expiry_in_the_past_is_refused_with_422(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    handler = make_user(org)
    old = refresh(handler).expires_on

    response = set_expiry(client, handler, clock.today() - timedelta(days=1))
    assert response.status_code == 422
    assert "HX-Trigger" not in response.headers
    body = response.get_data(as_text=True)
    assert body.strip().startswith('<form id="expiry"')
    assert "The expiry date must be after today." in body
    assert 'aria-invalid="true"' in body
    assert refresh(handler).expires_on == old
    assert events("expiry_changed", handler) == []
    assert [e.reason for e in events("expiry_refused", handler)] == ["refused_past_date"]

    garbled = set_expiry(client, handler, "31/02/2027")
    assert garbled.status_code == 422
    assert refresh(handler).expires_on == old


def test_expiry_without_javascript_redirects_to_the_users_page(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    handler = make_user(org)
    new_date = clock.today() + timedelta(days=10)
    response = set_expiry(client, handler, new_date, hx=False)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/console/users/{handler.id}"
    assert "Expiry date saved." in client.get(f"/console/users/{handler.id}").get_data(as_text=True)
    assert refresh(handler).expires_on == new_date


def test_reset_password_gives_a_one_time_password(app: Flask, client: FlaskClient) -> None:
    org = make_org()
    admin = log_in_admin(client, org)
    handler = make_user(org)
    theirs = app.test_client()
    assert login(theirs, handler.user_id).status_code == 302
    for _ in range(2):  # two wrong passwords since
        fresh = refresh(handler)
        apply(
            fresh,
            rules.login_attempt(
                fresh.to_state(), password_ok=False, now=clock.now(), today=clock.today()
            ),
        )
    assert refresh(handler).failed_attempts == 2

    response = client.post(f"/console/users/{handler.id}/password-reset")
    assert response.status_code == 200
    password = one_time_password(response)
    fresh = refresh(handler)
    assert fresh.failed_attempts == 0
    assert fresh.must_change_password
    assert [e.actor for e in events("password_reset_by_admin", handler)] == [admin.user_id]

    # Other sessions ended (R8).
    ended = theirs.get("/portal/")
    assert ended.status_code == 302
    assert ended.headers["Location"].startswith("/portal/login")
    # The old password no longer works; the new one does, and forces a change.
    assert login(theirs, handler.user_id, PASSWORD).status_code == 200
    first = login(theirs, handler.user_id, password)
    assert first.status_code == 302
    assert first.headers["Location"] == "/account/password"
    # The Administrator's own session is untouched.
    assert client.get("/console/users").status_code == 200


def test_reset_password_of_a_locked_out_user_says_it_is_still_disabled(
    client: FlaskClient,
) -> None:
    org = make_org()
    log_in_admin(client, org)
    handler = lock_out(make_user(org))
    response = client.post(f"/console/users/{handler.id}/password-reset")
    assert response.status_code == 200
    assert "is still disabled: tick Enabled" in response.get_data(as_text=True)
    assert refresh(handler).failed_attempts == 0


def test_sign_out_everywhere_ends_the_users_sessions(app: Flask, client: FlaskClient) -> None:
    org = make_org()
    admin = log_in_admin(client, org)
    handler = make_user(org)
    theirs = app.test_client()
    assert login(theirs, handler.user_id).status_code == 302
    assert theirs.get("/portal/").status_code == 200

    response = client.post(f"/console/users/{handler.id}/sign-out")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/console/users/{handler.id}"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Every session of this user has ended." in page

    ended = theirs.get("/portal/")
    assert ended.status_code == 302
    assert ended.headers["Location"].startswith("/portal/login")
    assert [e.actor for e in events("sessions_ended", handler)] == [admin.user_id]
    assert flags(handler) == (True, True, None)  # the account itself is untouched
    assert login(theirs, handler.user_id).status_code == 302


# --- escaping (CP-04) ----------------------------------------------------------------------


def assert_escaped(body: str) -> None:
    assert HOSTILE not in body
    assert "<img" not in body
    assert str(markupsafe.escape(HOSTILE)) in body


def test_hostile_full_name_is_escaped_everywhere(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    handler = rename(make_user(org), HOSTILE)

    assert_escaped(client.get("/console/users").get_data(as_text=True))
    assert_escaped(client.get("/console/users", headers=HX_RESULTS).get_data(as_text=True))
    assert_escaped(client.get(f"/console/users/{handler.id}").get_data(as_text=True))
    assert_escaped(toggle(client, handler, "false", hx=False).get_data(as_text=True))  # confirm
    assert_escaped(toggle(client, handler, "false").get_data(as_text=True))  # the HTMX row
    reset = client.post(f"/console/users/{handler.id}/password-reset")
    assert_escaped(reset.get_data(as_text=True))


# --- a constant number of queries ------------------------------------------------------------


def test_query_count_does_not_grow_with_the_rows_shown(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org, user_id="zz.admin")
    few = add_users(org, 5, "a")
    remove_access(refresh(few[0]))
    lock_out(refresh(few[1]))
    assert client.get("/console/users").status_code == 200  # warm up

    with counting_statements() as small:
        body = client.get("/console/users").get_data(as_text=True)
    assert len(ROW_IDS.findall(body)) == 6
    assert "Access removed" in body

    many = add_users(org, 55, "b")
    for user in many[:15]:
        remove_access(refresh(user))
    for user in many[15:20]:
        lock_out(refresh(user))
    with counting_statements() as large:
        body = client.get("/console/users").get_data(as_text=True)
    assert len(ROW_IDS.findall(body)) == 50
    assert len(large) == len(small), "\n".join(large)
    assert len(large) <= 12

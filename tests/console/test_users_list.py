"""The Console's users list over HTTP (docs/rules.md §4; docs/security.md AC-02, CP-04):
isolation, paging, search, filters, sorts, the HTMX fragment, escaping, and a query count that
does not grow with the rows shown.

Runs on SQLite and, when PORTAL_TEST_DATABASE_URL is set, on PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta

import markupsafe
import pytest
from flask.testing import FlaskClient
from sqlalchemy import update

from portal import clock
from portal.accounts import rules
from portal.accounts.models import Organisation
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.audit.record import record
from portal.db import write_transaction
from portal.extensions import db
from tests.console.users_helpers import HOSTILE
from tests.console.users_helpers import HX_RESULTS
from tests.console.users_helpers import ROW_IDS
from tests.console.users_helpers import ROW_USER_IDS
from tests.console.users_helpers import add_users
from tests.console.users_helpers import listed
from tests.console.users_helpers import log_in_admin
from tests.console.users_helpers import past_login
from tests.console.users_helpers import rename
from tests.console.users_helpers import sweep
from tests.console.users_helpers import toggle
from tests.factories import lock_out
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import refresh
from tests.factories import remove_access
from tests.statements import counting_statements

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
    assert_escaped(client.get(f"/console/users/{handler.id}/password-reset").get_data(as_text=True))
    reset = client.post(f"/console/users/{handler.id}/password-reset", follow_redirects=True)
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


def test_hostile_user_id_and_disabling_actor_are_escaped_in_the_rows(client: FlaskClient) -> None:
    """The rows are written with automatic escaping off and escape by hand (_row.html): a
    User ID and a disabling actor no form would accept, written straight to the database,
    still come out escaped in the list, its fragment, the user page and the toggle's row."""
    org = make_org()
    log_in_admin(client, org)
    handler = remove_access(make_user(org))
    with write_transaction(db.session):
        db.session.execute(update(User).where(User.id == handler.id).values(user_id=HOSTILE))
        record(
            rules.EventKind.ACCESS_REMOVED.value,
            actor=None,
            subject=db.session.get(User, handler.id),
            now=clock.now(),
            actor_label=HOSTILE,
        )
    handler = refresh(handler)
    assert handler.user_id == HOSTILE

    for body in (
        client.get("/console/users").get_data(as_text=True),
        client.get("/console/users", headers=HX_RESULTS).get_data(as_text=True),
        client.get(f"/console/users/{handler.id}").get_data(as_text=True),
        toggle(client, handler, "false").get_data(as_text=True),  # already so: the row again
    ):
        assert_escaped(body)
        assert f"by {markupsafe.escape(HOSTILE)}," in body

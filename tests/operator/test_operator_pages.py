"""The Portal team's organisations (create, duplicate, counts by state in one grouped query),
registering a firm's first Administrator (one-time password, forced change at first login),
and finding any user across organisations."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlalchemy import select

from portal import clock
from portal.accounts.models import Organisation
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.extensions import db
from portal.operator import directory
from portal.operator import organisations
from tests.factories import lock_out
from tests.factories import login
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import remove_access
from tests.helpers import audit_events
from tests.helpers import sign_in_as
from tests.operator.helpers import expired
from tests.operator.helpers import make_request
from tests.statements import counting_statements

HX = {"HX-Request": "true"}
OTP = re.compile(r'<p class="one-time-password"><code>([^<]+)</code></p>')


def org_count() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(Organisation)) or 0


# --- organisations ------------------------------------------------------------------------


def test_create_an_organisation(client: FlaskClient) -> None:
    operator = sign_in_as(client, Profile.PORTAL_TEAM)
    assert client.get("/operator/organisations/new").status_code == 200
    response = client.post("/operator/organisations/new", data={"name": "  Acme Claims Ltd "})
    assert response.status_code == 302
    db.session.rollback()
    org = db.session.scalar(select(Organisation).where(Organisation.name == "Acme Claims Ltd"))
    assert org is not None
    assert response.headers["Location"] == f"/operator/organisations/{org.id}"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Acme Claims Ltd created: now register its first Administrator." in page
    assert "has no Administrator yet" in page
    assert f"/operator/organisations/{org.id}/administrators/new" in page
    from portal.audit.models import AuditEvent

    (created,) = db.session.scalars(
        select(AuditEvent).where(AuditEvent.kind == "organisation_created")
    ).all()
    assert created.actor == operator.user_id
    assert created.organisation_id == org.id
    assert created.details == "Acme Claims Ltd"


@pytest.mark.parametrize("name", ["Acme Claims Ltd", "ACME CLAIMS LTD", "  acme claims ltd  "])
def test_a_duplicate_organisation_name_is_refused_clearly(client: FlaskClient, name: str) -> None:
    make_org("Acme Claims Ltd")
    sign_in_as(client, Profile.PORTAL_TEAM)
    response = client.post("/operator/organisations/new", data={"name": name})
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "There is a problem" in body
    assert "already exists" in body
    assert 'href="#name"' in body  # the error summary links to the field
    assert org_count() == 1


@pytest.mark.parametrize(
    ("name", "message"),
    [("", "Enter the organisation"), ("   ", "Enter the organisation"), ("x" * 201, "200")],
)
def test_a_bad_organisation_name_is_refused(client: FlaskClient, name: str, message: str) -> None:
    sign_in_as(client, Profile.PORTAL_TEAM)
    response = client.post("/operator/organisations/new", data={"name": name})
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert org_count() == 0


def test_organisations_with_their_users_counted_by_state(client: FlaskClient) -> None:
    acme, beta, empty = make_org("Acme"), make_org("Beta"), make_org("Empty Ltd")
    admin = make_user(acme, profile=Profile.ADMINISTRATOR)
    make_user(acme)
    lock_out(make_user(acme))
    expired(acme)
    remove_access(make_user(acme))
    lock_out(make_user(beta, profile=Profile.ADMINISTRATOR))
    make_user(None, profile=Profile.HELPDESK)  # operator staff belong to no organisation
    sign_in_as(client, Profile.PORTAL_TEAM)

    response = client.get("/operator/organisations")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    rows = {
        m.group(1): re.findall(r"<td>([^<]*)</td>", m.group(2))
        for m in re.finditer(r'<tr id="organisation-(\d+)">(.*?)</tr>', body, re.S)
    }
    # users, have access, system-disabled, access removed (administrators with access last)
    assert rows[str(acme.id)][:4] == ["5", "2", "2", "1"]
    assert rows[str(beta.id)][:4] == ["1", "0", "1", "0"]
    assert rows[str(empty.id)][:4] == ["0", "0", "0", "0"]
    assert "None: register one" in body  # Beta and Empty have no Administrator with access
    assert body.index("Acme") < body.index("Beta") < body.index("Empty Ltd")

    page = organisations.summaries()
    by_id = {row.id: row for row in page.rows}
    assert by_id[acme.id].administrators == 1
    assert by_id[beta.id].administrators == 0
    assert admin.organisation_id == acme.id

    filtered = client.get("/operator/organisations?q=bet").get_data(as_text=True)
    assert "Beta" in filtered
    assert "Acme" not in filtered


def test_the_organisations_list_is_a_fixed_number_of_queries(app: Flask) -> None:
    for i in range(3):
        org = make_org(f"Firm {i}")
        make_user(org)
    with counting_statements(selects_only=True) as few:
        organisations.summaries()
    for i in range(3, 12):
        org = make_org(f"Firm {i}")
        make_user(org)
        lock_out(make_user(org))
    db.session.rollback()
    with counting_statements(selects_only=True) as many:
        page = organisations.summaries()
    assert len(page.rows) == 12
    assert len(many) == len(few) == 2  # the total, then one grouped query for the page
    assert "GROUP BY" in many[1]


def test_organisations_are_paginated(app: Flask) -> None:
    for i in range(5):
        make_org(f"Firm {i:02d}")
    first = organisations.summaries(per_page=2)
    last = organisations.summaries(per_page=2, page=99)
    assert (first.total, first.pages, [r.name for r in first.rows]) == (
        5,
        3,
        ["Firm 00", "Firm 01"],
    )
    assert (last.page, [r.name for r in last.rows]) == (3, ["Firm 04"])


def test_an_unknown_organisation_is_a_404(client: FlaskClient) -> None:
    sign_in_as(client, Profile.PORTAL_TEAM)
    assert client.get("/operator/organisations/999999").status_code == 404
    assert client.get("/operator/organisations/999999/administrators/new").status_code == 404
    response = client.post(
        "/operator/organisations/999999/administrators/new",
        data={"user_id": "x.admin", "full_name": "X", "email": "x@example.com"},
    )
    assert response.status_code == 404


# --- the first Administrator ---------------------------------------------------------------


def register(client: FlaskClient, org: Organisation, **changes: str) -> object:
    data = {
        "user_id": "acme.admin",
        "full_name": "Ada Admin",
        "email": "ada@acme.example",
        "expires_on": (clock.today() + timedelta(days=365)).isoformat(),
        **changes,
    }
    return client.post(f"/operator/organisations/{org.id}/administrators/new", data=data)


def test_register_the_first_administrator_who_must_change_the_password(
    client: FlaskClient, app: Flask
) -> None:
    org = make_org("Acme Claims Ltd")
    operator = sign_in_as(client, Profile.PORTAL_TEAM)
    form = client.get(f"/operator/organisations/{org.id}/administrators/new")
    assert form.status_code == 200
    assert "Register the first Administrator of Acme Claims Ltd" in form.get_data(as_text=True)

    response = register(client, org)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_data(as_text=True)
    found = OTP.search(body)
    assert found is not None
    password = found.group(1)
    assert "It is shown only once" in body

    db.session.rollback()
    admin = db.session.scalar(select(User).where(User.user_id == "acme.admin"))
    assert admin is not None
    assert admin.profile == Profile.ADMINISTRATOR.value
    assert admin.organisation_id == org.id
    assert admin.must_change_password
    (created,) = audit_events(admin, "user_created")
    assert created.actor == operator.user_id
    assert created.organisation_id == org.id

    # The password is never shown again.
    page = client.get(f"/operator/users/{admin.id}").get_data(as_text=True)
    assert password not in page

    # The new Administrator logs in to the Console and must change the password first.
    firm = app.test_client()
    first = login(firm, "acme.admin", password, door="console")
    assert first.status_code == 302
    assert first.headers["Location"] == "/account/password"
    blocked = firm.get("/console/")
    assert blocked.status_code == 302
    assert blocked.headers["Location"] == "/account/password"
    changed = firm.post(
        "/account/password",
        data={
            "current_password": password,
            "password": "a brand new passphrase for Ada",
            "confirm": "a brand new passphrase for Ada",
        },
    )
    assert changed.status_code == 302
    assert firm.get("/console/").status_code == 200

    # The organisation now has its Administrator.
    org_page = client.get(f"/operator/organisations/{org.id}").get_data(as_text=True)
    assert "acme.admin" in org_page
    assert "Register an Administrator" in org_page


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"user_id": "ACME.ADMIN"}, "user_id", "That User ID is already taken"),
        ({"user_id": "a b"}, "user_id", "A User ID may use only"),
        ({"user_id": ""}, "user_id", "Enter a User ID"),
        ({"full_name": ""}, "full_name", "Enter the user"),
        ({"email": "not-an-email"}, "email", "Enter an email address in the correct format"),
        ({"expires_on": ""}, "expires_on", "Enter an expiry date"),
        ({"expires_on": "tomorrow"}, "expires_on", "Enter an expiry date"),
        ({"expires_on": "2000-01-01"}, "expires_on", "must be after today"),
        ({"profile": "portal_team"}, None, None),  # ignored: always an Administrator
    ],
)
def test_registering_refuses_bad_input(
    client: FlaskClient, changes: dict[str, str], field: str | None, message: str | None
) -> None:
    org = make_org()
    make_user(make_org(), user_id="acme.admin")
    sign_in_as(client, Profile.PORTAL_TEAM)
    before = db.session.scalar(select(func.count()).select_from(User))
    response = register(
        client, org, **({"user_id": "new.admin"} if field is None else {}), **changes
    )
    if field is None:
        assert response.status_code == 200
        db.session.rollback()
        created = db.session.scalar(select(User).where(User.user_id == "new.admin"))
        assert created is not None
        assert created.profile == Profile.ADMINISTRATOR.value
        return
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert message in body
    assert f'href="#{field}"' in body
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(User)) == before


def test_registering_another_administrator_says_the_firm_has_one(client: FlaskClient) -> None:
    org = make_org()
    make_user(org, profile=Profile.ADMINISTRATOR)
    sign_in_as(client, Profile.PORTAL_TEAM)
    page = client.get(f"/operator/organisations/{org.id}/administrators/new")
    assert "already has 1 Administrator" in page.get_data(as_text=True)


# --- finding users --------------------------------------------------------------------------


def test_find_users_across_organisations(client: FlaskClient) -> None:
    acme, beta = make_org("Acme"), make_org("Beta")
    a = make_user(acme, user_id="a.smith", email="jo.smith@acme.example")
    b = lock_out(make_user(beta, user_id="Smith", email="j@beta.example"))
    staff = make_user(None, profile=Profile.HELPDESK, user_id="smith.helpdesk")
    make_user(beta, user_id="unrelated")
    sign_in_as(client, Profile.PORTAL_TEAM)

    body = client.get("/operator/users?q=SMITH").get_data(as_text=True)
    for user in (a, b, staff):
        assert f'href="/operator/users/{user.id}"' in body
    assert "unrelated" not in body
    assert "Acme" in body
    assert "Beta" in body
    assert "Operator staff" in body
    assert "Disabled by the system: locked out" in body

    by_email = client.get("/operator/users?q=@beta.example").get_data(as_text=True)
    assert f"/operator/users/{b.id}" in by_email
    assert f"/operator/users/{a.id}" not in by_email

    by_name = client.get("/operator/users", query_string={"q": "name unrel"}).get_data(as_text=True)
    assert "unrelated" in by_name

    # An exact User ID comes first.
    exact = client.get("/operator/users?q=smith").get_data(as_text=True)
    assert exact.index(f"/operator/users/{b.id}") < exact.index(f"/operator/users/{a.id}")


def test_the_search_is_bounded(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    org = make_org()
    for i in range(5):
        make_user(org, user_id=f"many{i}")
    monkeypatch.setattr(directory, "LIMIT", 3)
    sign_in_as(client, Profile.PORTAL_TEAM)
    body = client.get("/operator/users?q=many").get_data(as_text=True)
    assert len(re.findall(r'href="/operator/users/\d+"', body)) == 3
    assert "More users match" in body
    assert len(directory.search("many", limit=10).rows) == 5


@pytest.mark.parametrize("q", ["%", "_", "\\", "many%", "\x00", "x" * 500])
def test_search_wildcards_are_literal(client: FlaskClient, q: str) -> None:
    make_user(make_org(), user_id="many1")
    sign_in_as(client, Profile.PORTAL_TEAM)
    response = client.get("/operator/users", query_string={"q": q})
    assert response.status_code == 200
    assert "many1" not in response.get_data(as_text=True)


def test_search_as_you_type_gets_the_results_alone(client: FlaskClient) -> None:
    user = make_user(make_org(), user_id="typed.user")
    sign_in_as(client, Profile.PORTAL_TEAM)
    response = client.get(
        "/operator/users?q=typed", headers={**HX, "HX-Target": "operator-results"}
    )
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert '<section id="operator-results"' in body
    assert "<html" not in body
    assert f"/operator/users/{user.id}" in body
    assert {"HX-Request", "HX-Target"} <= set(response.vary)


def test_a_reference_is_carried_from_the_search_to_the_user(client: FlaskClient) -> None:
    user = expired(make_org(), user_id="expired.admin")
    req = make_request(user_id="expired.admin")
    sign_in_as(client, Profile.PORTAL_TEAM)
    home = client.get("/operator/").get_data(as_text=True)
    assert req.reference in home
    link = f"/operator/users?q=expired.admin&amp;ref={req.reference}"
    assert link in home
    found = client.get(link.replace("&amp;", "&")).get_data(as_text=True)
    assert f"Acting for helpdesk request {req.reference}" in found
    assert f"/operator/users/{user.id}?ref={req.reference}" in found


def test_only_referred_requests_are_on_the_home_page(client: FlaskClient) -> None:
    waiting = make_request(status="referred")
    done = make_request(status="resolved")
    sign_in_as(client, Profile.PORTAL_TEAM)
    home = client.get("/operator/").get_data(as_text=True)
    assert waiting.reference in home
    assert done.reference not in home


def test_the_operator_link_is_for_the_portal_team_only(client: FlaskClient, app: Flask) -> None:
    sign_in_as(client, Profile.PORTAL_TEAM)
    assert 'href="/operator/">Operator</a>' in client.get("/portal/").get_data(as_text=True)
    for profile in (Profile.HELPDESK, Profile.ADMINISTRATOR, Profile.CLAIMS_HANDLER):
        other = app.test_client()
        sign_in_as(other, profile)
        assert "/operator/" not in other.get("/portal/").get_data(as_text=True)


# --- input PostgreSQL would refuse, and dates at the edge: a clear message, never a 500 -------


@pytest.mark.parametrize("name", ["Acme\x00Ltd", "Acme\nLtd", "\x07"])
def test_control_characters_in_an_organisation_name_are_refused(
    client: FlaskClient, name: str
) -> None:
    sign_in_as(client, Profile.PORTAL_TEAM)
    response = client.post("/operator/organisations/new", data={"name": name})
    assert response.status_code == 422
    assert "no control characters" in response.get_data(as_text=True)
    assert org_count() == 0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"user_id": "bad\x00id"}, "A User ID may use only"),
        ({"full_name": "Ada\x00Admin"}, "no control characters"),
        ({"email": "ada\x00@acme.example"}, "Enter an email address"),
    ],
)
def test_control_characters_when_registering_are_refused(
    client: FlaskClient, changes: dict[str, str], message: str
) -> None:
    org = make_org()
    sign_in_as(client, Profile.PORTAL_TEAM)
    response = register(client, org, **changes)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(User)) == 1  # the operator


def test_a_user_whose_expiry_is_the_last_date_there_is(client: FlaskClient) -> None:
    from datetime import date

    user = make_user(make_org(), expires_on=date(9999, 12, 31))
    sign_in_as(client, Profile.PORTAL_TEAM)
    page = client.get(f"/operator/users/{user.id}")
    assert page.status_code == 200
    assert 'value="9999-12-31"' in page.get_data(as_text=True)

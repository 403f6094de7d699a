"""Input PostgreSQL cannot take is refused with a clear answer, never a 500 (found in review:
each case gave a 500 on PostgreSQL): control characters in the helpdesk's text fields (a
message by the field, portal/text_forms.py), ids beyond any table (portal/input_guard.py)."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlalchemy import select

from portal.accounts.models import Profile
from portal.extensions import db
from portal.helpdesk.models import HelpdeskRequest
from portal.input_guard import MAX_ID
from tests.factories import login
from tests.factories import make_org
from tests.factories import make_user
from tests.helpdesk_factories import make_request
from tests.helpers import sign_in_as

TOO_BIG = MAX_ID + 1


def _count() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(HelpdeskRequest)) or 0


@pytest.mark.parametrize("field", ["full_name", "organisation", "details", "error_message"])
def test_nul_in_a_public_form_is_refused_and_nothing_stored(
    app: Flask, client: FlaskClient, field: str
) -> None:
    data = {
        "full_name": "Ada Lovelace",
        "email": "ada@example.com",
        "organisation": "Acme",
        "role": "administrator",
        "console": "portal",
        "environment": "live",
        "error_message": "Your User ID is locked",
        "details": "",
    }
    data[field] = "a\x00b"
    response = client.post("/helpdesk/contact", data=data)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "Remove the control characters" in body
    assert f'id="{field}-error"' in body
    assert _count() == 0


def test_nul_in_a_staff_note_is_refused(client: FlaskClient) -> None:
    staff = make_user(None, profile=Profile.HELPDESK)
    assert login(client, staff.user_id).status_code == 302
    req = make_request()
    response = client.post(f"/helpdesk/requests/{req.id}/notes", data={"note": "a\x00b"})
    assert response.status_code in (400, 422)
    assert "Remove the control characters" in response.get_data(as_text=True)


def test_a_user_id_longer_once_casefolded_is_refused(client: FlaskClient) -> None:
    """ "ß" casefolds to "ss": 40 of them make an 80-character key (was a 500 on PostgreSQL)."""
    response = client.post(
        "/helpdesk/contact",
        data={
            "full_name": "Ada",
            "email": "ada@example.com",
            "organisation": "Acme",
            "role": "administrator",
            "console": "portal",
            "environment": "live",
            "error_message": "locked",
            "user_id": "ß" * 40,
        },
    )
    assert response.status_code == 422
    assert "A User ID is 64 characters or fewer" in response.get_data(as_text=True)
    assert _count() == 0


@pytest.mark.parametrize(
    ("profile", "path"),
    [
        (Profile.HELPDESK, f"/helpdesk/requests/{TOO_BIG}"),
        (Profile.HELPDESK, f"/helpdesk/requests/{TOO_BIG}/screenshot"),
        (Profile.PORTAL_TEAM, f"/operator/users/{TOO_BIG}"),
        (Profile.PORTAL_TEAM, f"/operator/organisations/{TOO_BIG}"),
        (Profile.ADMINISTRATOR, f"/console/users/{TOO_BIG}"),
    ],
)
def test_an_id_beyond_any_table_is_a_404(client: FlaskClient, profile: Profile, path: str) -> None:
    sign_in_as(client, profile, make_org() if profile is Profile.ADMINISTRATOR else None)
    assert client.get(path).status_code == 404
    assert client.get(path.replace(str(TOO_BIG), str(MAX_ID))).status_code == 404


def test_a_reference_beyond_any_id_finds_nothing(client: FlaskClient) -> None:
    staff = make_user(None, profile=Profile.HELPDESK)
    assert login(client, staff.user_id).status_code == 302
    for q in (f"HD-{TOO_BIG}", "hd99999999999"):
        assert client.get("/helpdesk/requests", query_string={"q": q}).status_code == 200

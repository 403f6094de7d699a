"""The Console's users list shows whether each user has a second factor and filters "no second
factor" (R10), on SQLite and PostgreSQL."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from portal.accounts.models import Profile
from tests.factories import make_org
from tests.factories import make_user
from tests.helpers import sign_in_as
from tests.second_factor.helpers import add_totp


def second_factor_cells(page: str) -> dict[str, str]:
    rows = re.findall(
        r'<th scope="row"><a href="[^"]*"[^>]*>([^<]+)</a>.*?<td>(Yes|No)</td></tr>',
        page,
        re.S,
    )
    return dict(rows)


def test_the_list_shows_and_filters_the_second_factor(app: Flask, client: FlaskClient) -> None:
    org = make_org()
    with_factor = make_user(org, user_id="has.factor")
    make_user(org, user_id="no.factor")
    add_totp(with_factor)
    admin = sign_in_as(client, Profile.ADMINISTRATOR, org)
    page = client.get("/console/users").get_data(as_text=True)
    assert '<th scope="col">Second factor</th>' in page
    cells = second_factor_cells(page)
    assert cells["has.factor"] == "Yes"
    assert cells["no.factor"] == "No"
    assert cells[admin.user_id] == "No"
    none = second_factor_cells(
        client.get("/console/users?second_factor=none").get_data(as_text=True)
    )
    assert set(none) == {"no.factor", admin.user_id}
    yes = second_factor_cells(client.get("/console/users?second_factor=yes").get_data(as_text=True))
    assert set(yes) == {"has.factor"}
    bad = client.get("/console/users?second_factor=maybe")
    assert bad.status_code == 200
    assert "Unknown second_factor" in bad.get_data(as_text=True)


def test_a_re_rendered_row_keeps_its_indicator(app: Flask, client: FlaskClient) -> None:
    org = make_org()
    user = make_user(org)
    add_totp(user)
    sign_in_as(client, Profile.ADMINISTRATOR, org)
    response = client.post(
        f"/console/users/{user.id}/enabled",
        data={"enabled": "false", "confirmed": "yes"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert re.search(r"<td>Yes</td></tr>", response.get_data(as_text=True))

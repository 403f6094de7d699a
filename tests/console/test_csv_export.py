"""``GET /console/users/export.csv`` (docs/rules.md §9): the list's filters apply, the columns
and formats of the contract, the formula guard, and only the organisation's own users.

Runs on SQLite and, when PORTAL_TEST_DATABASE_URL is set, on PostgreSQL.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from flask.testing import FlaskClient

from portal import clock
from portal.accounts.models import Profile
from tests.console.bulk_helpers import fast_users
from tests.console.users_helpers import log_in_admin
from tests.console.users_helpers import rename
from tests.factories import lock_out
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import remove_access
from tests.second_factor.helpers import add_totp

HEADER = [
    "user_id",
    "full_name",
    "email",
    "profile",
    "expires_on",
    "state",
    "reason",
    "enabled",
    "active",
    "last_login_at",
    "has_second_factor",
]


def export(client: FlaskClient, query: str = "") -> list[dict[str, str]]:
    response = client.get(f"/console/users/export.csv{query}", buffered=True)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="users-')
    raw = response.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with a BOM, for Excel
    reader = csv.reader(io.StringIO(raw.decode("utf-8-sig")))
    header = next(reader)
    assert header == HEADER
    return [dict(zip(header, row, strict=True)) for row in reader]


def test_columns_formats_and_states(client: FlaskClient) -> None:
    org = make_org()
    admin = log_in_admin(client, org)
    locked = lock_out(make_user(org, user_id="locked.one"))
    removed = remove_access(make_user(org, user_id="removed.one"))
    make_user(make_org(), user_id="elsewhere.one")
    rows = {r["user_id"]: r for r in export(client)}
    assert set(rows) == {admin.user_id, locked.user_id, removed.user_id}
    a = rows[admin.user_id]
    assert a["profile"] == "administrator"
    assert a["state"] == "has_access"
    assert (a["enabled"], a["active"], a["reason"]) == ("true", "true", "")
    assert a["expires_on"] == admin.expires_on.isoformat()  # type: ignore[union-attr]
    assert a["last_login_at"].endswith("Z")  # ISO 8601 UTC
    assert a["has_second_factor"] == "false"
    assert rows[locked.user_id]["state"] == "system_disabled"
    assert rows[locked.user_id]["reason"] == "lockout"
    assert rows[removed.user_id]["state"] == "access_removed"
    assert (rows[removed.user_id]["enabled"], rows[removed.user_id]["active"]) == (
        "false",
        "false",
    )
    assert rows[removed.user_id]["last_login_at"] == ""


def test_the_lists_filters_apply(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    fast_users(org, 3, "handler")
    fast_users(org, 2, "chief", profile=Profile.ADMINISTRATOR)
    soon = make_user(org, user_id="soon.one", expires_on=clock.today() + timedelta(days=5))
    handlers = [r["user_id"] for r in export(client, "?profile=claims_handler")]
    assert handlers == ["handler00000", "handler00001", "handler00002", "soon.one"]
    assert [r["user_id"] for r in export(client, "?q=chief00001")] == ["chief00001"]
    assert [r["user_id"] for r in export(client, "?expiring=30")] == [soon.user_id]
    assert export(client, "?state=access_removed") == []


def test_formula_cells_are_guarded(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    user = rename(make_user(org, user_id="sheet.user"), '=HYPERLINK("http://x")')
    rows = {r["user_id"]: r for r in export(client)}
    assert rows[user.user_id]["full_name"] == '\'=HYPERLINK("http://x")'


def test_the_second_factor_column_and_filter(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    with_factor = make_user(org, user_id="with.factor")
    add_totp(with_factor)
    make_user(org, user_id="without.factor")
    rows = {r["user_id"]: r["has_second_factor"] for r in export(client)}
    assert rows["with.factor"] == "true"
    assert rows["without.factor"] == "false"
    assert [r["user_id"] for r in export(client, "?second_factor=yes")] == ["with.factor"]
    assert "with.factor" not in [r["user_id"] for r in export(client, "?second_factor=none")]

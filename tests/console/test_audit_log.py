"""The organisation's audit log (docs/rules.md R9, §4): isolation, filters, pagination, escaping
(CP-04), the streamed CSV export with formula neutralising, and a constant query count."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import markupsafe
import pytest
from flask.testing import FlaskClient
from sqlalchemy import insert

from portal import clock
from portal.accounts.models import Organisation
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.audit import export as audit
from portal.audit.models import AuditEvent
from portal.db import write_transaction
from portal.extensions import db
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import refresh
from tests.helpers import sign_in_as
from tests.statements import counting_statements

HOSTILE = '"><img src=x onerror=alert(1)>'
ROW = re.compile(r'<tr id="event-(\d+)">')


def log_in_admin(client: FlaskClient, org: Organisation, user_id: str | None = None) -> User:
    return sign_in_as(client, Profile.ADMINISTRATOR, org, user_id=user_id)


def add_events(org: Organisation | None, *events: dict[str, Any]) -> None:
    """Audit rows written directly (bulk), for what the factories do not record."""
    defaults = {
        "organisation_id": org.id if org else None,
        "occurred_at": clock.now(),
        "actor": "system",
        "kind": "system_disabled",
    }
    with write_transaction(db.session):
        db.session.execute(insert(AuditEvent), [{**defaults, **ev} for ev in events])


def row_ids(body: str) -> list[int]:
    return [int(pk) for pk in ROW.findall(body)]


def csv_rows(response: Any) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


# --- isolation and columns -------------------------------------------------------------


def test_shows_only_the_organisations_events(client: FlaskClient) -> None:
    mine, theirs = make_org("Alpha Ltd"), make_org("Bravo Ltd")
    make_user(mine, user_id="alpha-handler")
    make_user(theirs, user_id="bravo-handler")
    add_events(theirs, {"kind": "locked_out", "subject": "bravo-handler", "reason": "lockout"})
    add_events(None, {"kind": "login_failed", "actor": "anonymous", "reason": "unknown_user_id"})
    log_in_admin(client, mine, user_id="alpha-admin")

    response = client.get("/console/audit")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert body.count("<h1") == 1
    assert "alpha-handler" in body
    assert "alpha-admin" in body
    assert "Logged in" in body  # the admin's own login, human-readable
    assert "User created" in body
    assert "bravo" not in body.casefold()
    assert "Locked out" not in body
    assert "anonymous" not in body
    assert "<caption>" in body
    assert len(re.findall(r"<th[ >]", body)) == body.count("scope=")
    assert "style=" not in body


def test_newest_first_and_times_in_the_portal_time_zone(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    add_events(
        org,
        {"occurred_at": datetime(2025, 7, 1, 11, 0, tzinfo=UTC), "details": "summer"},
        {"occurred_at": datetime(2025, 1, 1, 11, 0, tzinfo=UTC), "details": "winter"},
    )
    body = client.get("/console/audit?from=2024-12-01&to=2025-12-31").get_data(as_text=True)
    assert body.index("summer") < body.index("winter")
    # one format everywhere (portal/display.py), in the portal's time zone
    assert "1 Jul 2025 12:00" in body  # British Summer Time
    assert "1 Jan 2025 11:00" in body
    assert 'datetime="2025-07-01T11:00:00+00:00"' in body


# --- filters ---------------------------------------------------------------------------


def test_filter_by_user_matches_actor_or_subject_ignoring_case(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    make_user(org, user_id="Carol.Smith")
    make_user(org, user_id="dave")
    add_events(
        org,
        {
            "kind": "access_removed",
            "actor": "dave",
            "subject": "Carol.Smith",
            "details": "detail-1st",
        },
        {"kind": "enabled", "actor": "Carol.Smith", "subject": "dave", "details": "detail-second"},
        {"kind": "locked_out", "subject": "dave", "details": "detail-third"},
    )
    body = client.get("/console/audit?user=carol.smith").get_data(as_text=True)
    assert "detail-1st" in body
    assert "detail-second" in body
    assert "detail-third" not in body
    # The user_created event of Carol is hers too; dave's is not.
    assert len(row_ids(body)) == 3
    body = client.get("/console/audit?user=SYSTEM").get_data(as_text=True)
    assert "detail-third" in body
    assert "detail-1st" not in body


def test_filter_by_kind_offers_the_kinds_that_occur(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    add_events(
        org,
        {"kind": "locked_out", "subject": "x1", "reason": "lockout", "details": "detail-lock"},
        {"kind": "access_removed", "subject": "x2", "details": "detail-removed"},
    )
    add_events(make_org(), {"kind": "expiry_changed", "details": "elsewhere"})
    page = client.get("/console/audit").get_data(as_text=True)
    options = re.findall(r'<option[^>]*value="([^"]*)"', page)
    assert {"", "locked_out", "access_removed", "user_created", "login_succeeded"} <= set(options)
    assert len(options) == len(set(options))
    assert "expiry_changed" not in page
    body = client.get("/console/audit?kind=locked_out").get_data(as_text=True)
    assert len(row_ids(body)) == 1
    assert "detail-lock" in body
    assert "detail-removed" not in body
    assert "5 wrong passwords in a row" in body  # the reason, human-readable
    assert '<option selected value="locked_out">' in body


def test_unknown_kind_is_a_clear_error(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    response = client.get("/console/audit?kind=made_up")
    assert response.status_code == 400
    assert "Choose what happened from the list" in response.get_data(as_text=True)


def test_dates_are_whole_days_in_the_portal_time_zone(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    # London is on BST (UTC+1) in June: 2 June local runs from 1 June 23:00 to 2 June 23:00 UTC.
    add_events(
        org,
        {"occurred_at": datetime(2025, 6, 1, 22, 59, 59, tzinfo=UTC), "details": "e-1june-late"},
        {"occurred_at": datetime(2025, 6, 1, 23, 0, 0, tzinfo=UTC), "details": "e-2june-first"},
        {"occurred_at": datetime(2025, 6, 2, 22, 59, 59, tzinfo=UTC), "details": "e-2june-last"},
        {"occurred_at": datetime(2025, 6, 2, 23, 0, 0, tzinfo=UTC), "details": "e-3june-first"},
    )
    body = client.get("/console/audit?from=2025-06-02&to=2025-06-02").get_data(as_text=True)
    assert "e-2june-first" in body
    assert "e-2june-last" in body
    assert "e-1june-late" not in body
    assert "e-3june-first" not in body
    body = client.get("/console/audit?from=2025-06-03").get_data(as_text=True)
    assert "e-3june-first" in body
    assert "e-2june-last" not in body
    body = client.get("/console/audit?to=2025-06-01").get_data(as_text=True)
    assert "e-1june-late" in body
    assert "e-2june-first" not in body


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2025-02-30", "Enter a real ‘From’ date"),
        ("to=not-a-date", "Enter a real ‘To’ date"),
        ("from=31/12/2025", "Enter a real ‘From’ date"),
        ("from=0001-01-01", "Enter a ‘From’ date between 1900 and 9998"),
        ("to=9999-12-31", "Enter a ‘To’ date between 1900 and 9998"),
        ("from=2025-06-02&to=2025-06-01", "‘To’ must be the same as or after ‘From’"),
        ("user=" + "x" * 65, "Enter a User ID of 64 characters or fewer"),
        ("user=ab%00cd", "Enter a User ID using letters"),
    ],
)
def test_bad_filters_are_a_clear_message_never_a_500(
    client: FlaskClient, query: str, message: str
) -> None:
    org = make_org()
    log_in_admin(client, org)
    for path in ("/console/audit", "/console/audit.csv"):
        response = client.get(f"{path}?{query}")
        assert response.status_code == 400
        body = response.get_data(as_text=True)
        assert str(markupsafe.escape(message)) in body
        assert "There is a problem" in body
        assert "<title>Error: Audit log" in body
        assert 'aria-invalid="true"' in body
        assert not row_ids(body)


def test_an_empty_filter_and_a_bad_page_number_are_ignored(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    for query in ("user=&kind=&from=&to=", "page=abc", "page=-3", "page=99999999999999999999"):
        response = client.get(f"/console/audit?{query}")
        assert response.status_code == 200, query


# --- pagination ------------------------------------------------------------------------


def test_fifty_a_page_newest_first(client: FlaskClient) -> None:
    org = make_org()
    start = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    add_events(
        org,
        *(
            {"occurred_at": start + timedelta(minutes=i), "subject": f"s{i:03d}"}
            for i in range(120)
        ),
    )
    log_in_admin(client, org)
    query = "kind=system_disabled"
    first = client.get(f"/console/audit?{query}").get_data(as_text=True)
    assert len(row_ids(first)) == 50
    assert first.index("s119") < first.index("s118")
    assert "s069" not in first
    assert 'href="/console/audit?kind=system_disabled&amp;page=2"' in first
    assert "Newer events" not in first
    third = client.get(f"/console/audit?{query}&page=3").get_data(as_text=True)
    assert len(row_ids(third)) == 20
    assert "s019" in third
    assert "s020" not in third
    assert "Older events" not in third
    assert 'href="/console/audit?kind=system_disabled&amp;page=2"' in third
    beyond = client.get(f"/console/audit?{query}&page=9").get_data(as_text=True)
    assert not row_ids(beyond)
    assert "There are no more events" in beyond


# --- escaping (docs/security.md CP-04) ---------------------------------------------------------


def test_hostile_names_and_user_ids_are_escaped(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    victim = refresh(make_user(org, user_id="victim"))
    with write_transaction(db.session):
        victim.full_name = HOSTILE
    add_events(
        org,
        {"actor": HOSTILE, "kind": "login_failed", "subject": "victim", "subject_id": victim.id},
        {"actor": "victim", "actor_id": victim.id, "kind": HOSTILE, "reason": HOSTILE},
        {"actor": "system", "kind": "details_changed", "details": f"full_name: a -> {HOSTILE}"},
    )
    for query in ({}, {"user": HOSTILE}, {"kind": HOSTILE}):
        body = client.get("/console/audit", query_string=query).get_data(as_text=True)
        assert HOSTILE not in body
        assert "<img" not in body
    body = client.get("/console/audit").get_data(as_text=True)
    assert body.count(str(markupsafe.escape(HOSTILE))) >= 5


# --- CSV -------------------------------------------------------------------------------


def test_csv_has_a_header_the_filtered_rows_and_a_filename(client: FlaskClient) -> None:
    org, other = make_org("Acme & Sons Ltd"), make_org()
    log_in_admin(client, org)
    add_events(
        org,
        {"kind": "locked_out", "subject": "carol", "reason": "lockout", "details": "one"},
        {"kind": "locked_out", "subject": "dave", "reason": "lockout", "details": "two"},
        {"kind": "access_removed", "subject": "carol", "details": "three"},
    )
    add_events(other, {"kind": "locked_out", "subject": "carol", "details": "other-org"})

    response = client.get("/console/audit.csv?kind=locked_out")
    assert response.status_code == 200
    assert response.is_streamed
    assert response.mimetype == "text/csv"
    today = clock.today().isoformat()
    assert (
        response.headers["Content-Disposition"]
        == f'attachment; filename="audit-acme-sons-ltd-{today}.csv"'
    )
    rows = csv_rows(response)
    assert rows[0] == list(audit.CSV_HEADER)
    assert [r[10] for r in rows[1:]] == ["two", "one"]  # newest first
    assert {r[6] for r in rows[1:]} == {"locked_out"}
    assert rows[1][5] == "Locked out"
    assert rows[1][9] == "5 wrong passwords in a row"
    assert rows[1][2] == "Europe/London"

    everything = csv_rows(client.get("/console/audit.csv"))
    details = [r[10] for r in everything[1:]]
    assert "three" in details
    assert "other-org" not in details
    assert len(everything) - 1 == len(row_ids(client.get("/console/audit").get_data(as_text=True)))


def test_csv_link_on_the_page_keeps_the_filters(client: FlaskClient) -> None:
    org = make_org()
    log_in_admin(client, org)
    body = client.get("/console/audit?user=bob&from=2025-01-01").get_data(as_text=True)
    assert 'href="/console/audit.csv?user=bob&amp;from=2025-01-01"' in body


def test_csv_streams_in_batches(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit, "CSV_BATCH", 3)
    org = make_org()
    start = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    add_events(
        org,
        *({"occurred_at": start + timedelta(seconds=i), "details": f"n{i}"} for i in range(10)),
    )
    log_in_admin(client, org)
    response = client.get("/console/audit.csv?kind=system_disabled")
    chunks = list(response.response)
    assert len(chunks) >= 4  # 10 rows in batches of 3
    rows = list(csv.reader(io.StringIO("".join(c.decode() for c in chunks))))
    assert [r[10] for r in rows[1:]] == [f"n{i}" for i in range(9, -1, -1)]


@pytest.mark.parametrize(
    "payload", ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"]
)
def test_csv_neutralises_formulas(client: FlaskClient, payload: str) -> None:
    org = make_org()
    log_in_admin(client, org)
    add_events(
        org,
        {"kind": "details_changed", "actor": payload[:64], "subject": payload, "details": payload},
    )
    rows = csv_rows(client.get("/console/audit.csv?kind=details_changed"))
    assert len(rows) == 2
    row = rows[1]
    for index in (3, 7, 10):  # who, to whom, details
        assert row[index] == "'" + payload
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row)


def test_safe_cell() -> None:
    assert audit.safe_cell(None) == ""
    assert audit.safe_cell("jsmith") == "jsmith"
    assert audit.safe_cell("a=b") == "a=b"
    assert audit.safe_cell("=1+2") == "'=1+2"
    assert audit.safe_cell(" -1") == " -1"


# --- query count -----------------------------------------------------------------------


def queries_for_audit_page(client: FlaskClient, n: int) -> int:
    org = make_org()
    users = [make_user(org) for _ in range(n)]
    add_events(
        org,
        *(
            {"kind": "enabled", "actor": u.user_id, "actor_id": u.id, "subject_id": u.id}
            for u in users
        ),
    )
    log_in_admin(client, org)
    client.get("/console/audit")
    with counting_statements() as statements:
        response = client.get("/console/audit")
    assert response.status_code == 200
    assert len(row_ids(response.get_data(as_text=True))) == min(50, 2 * n + 3)
    return len(statements)


def test_query_count_does_not_grow_with_events(client: FlaskClient, app: Any) -> None:
    assert queries_for_audit_page(client, 5) == queries_for_audit_page(app.test_client(), 50)

"""The Helpdesk report (issue 14 point 7) over HTTP, on a fixed data set and a fixed clock:
counts per week, per error code, profile, console and environment; medians in working time;
suggestions and deflection; the SVG chart; the CSV; who may open it."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC
from datetime import datetime

import pytest
from flask.testing import FlaskClient

from portal import clock
from portal.accounts.models import Profile
from portal.db import write_transaction
from portal.extensions import db
from portal.helpdesk.models import EventKind
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.page_views import DeflectionHour
from portal.helpdesk.page_views import PageView
from portal.helpdesk.timeline import add_event
from tests.helpdesk_factories import make_request
from tests.helpers import sign_in_as

#: Wednesday 25 November 2026, noon (London is on UTC in November).
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def _event(req: HelpdeskRequest, kind: EventKind, when: datetime, **status: str) -> None:
    with write_transaction(db.session):
        add_event(req, kind, None, when, details="x", **status)


def _resolve(req: HelpdeskRequest, when: datetime, from_status: str = "in_progress") -> None:
    _event(req, EventKind.STATUS_CHANGED, when, from_status=from_status, to_status="resolved")


@pytest.fixture
def data_set(app: object) -> None:
    """Five requests in the default range (the last twelve weeks: 7 Sep to 25 Nov), one before."""
    # Week from 16 Nov: A, B, C.
    a = make_request(error_message="It says LOGIN-06", created_at=at(16, 10))
    _event(a, EventKind.REPLY, at(16, 11, 30))  # 1.5 working hours
    _resolve(a, at(17, 10))  # Mon 10:00-17:30 + Tue 09:00-10:00 = 8.5 working hours
    b = make_request(
        error_message="my account is locked",
        stated_role="claims_handler",
        console="portal",
        environment="training",
        created_at=at(17, 9),
    )
    with write_transaction(db.session):
        b.suggestions_shown = "LOGIN-02 LOGIN-03"
    _event(b, EventKind.GUIDE_REPLY, at(17, 12))  # 3 working hours
    _resolve(b, at(17, 13))  # 4 working hours
    make_request(kind="resend_user_id", created_at=at(18, 16))
    # Week from 23 Nov: D (waited on the requester a working day), E (screenshot only).
    d = make_request(
        error_message="Your User ID has reached its expiry date.", created_at=at(23, 9)
    )
    _event(d, EventKind.REPLY, at(23, 9, 30))  # 0.5 working hours
    _event(d, EventKind.STATUS_CHANGED, at(23, 10), from_status="new", to_status="waiting")
    _event(d, EventKind.STATUS_CHANGED, at(24, 10), from_status="waiting", to_status="in_progress")
    _resolve(d, at(24, 11))  # 10.5 working hours, 8.5 of them paused: 2
    make_request(error_message=None, console="portal", created_at=at(24, 14))
    # Before the range: not counted.
    old = make_request(created_at=datetime(2026, 9, 1, 10, tzinfo=UTC))
    _resolve(old, datetime(2026, 9, 1, 11, tzinfo=UTC))
    # Deflection: one folded hour (4 page views, 1 sent a form) and one decided row not folded
    # yet; a row of the last hour is not decided, so not counted.
    with write_transaction(db.session):
        db.session.add(DeflectionHour(hour=at(20, 10), shown=4, sent=1))
        db.session.add(PageView(id="a" * 22, shown_at=at(25, 9)))
        db.session.add(PageView(id="b" * 22, shown_at=at(25, 11, 30)))


def _staff(client: FlaskClient) -> None:
    sign_in_as(client, Profile.HELPDESK)


def page(client: FlaskClient, **args: str) -> str:
    with clock.frozen(NOW):
        response = client.get("/helpdesk/report", query_string=args)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def table(html: str, table_id: str) -> dict[str, str]:
    found = re.search(rf'<table class="report-table" id="{table_id}">(.*?)</table>', html, re.S)
    assert found is not None, table_id
    rows = re.findall(r"<tr><td>(.*?)</td><td class=\"numeric\">([\d,]+)</td></tr>", found.group(1))
    return {re.sub(r"<[^>]+>", "", label): count for label, count in rows}


def figure(html: str, term: str) -> str:
    found = re.search(rf"<dt>{re.escape(term)}</dt>\s*<dd>(.*?)</dd>", html, re.S)
    assert found is not None, term
    return " ".join(re.sub(r"<[^>]+>", "", found.group(1)).split())


@pytest.mark.usefixtures("data_set")
def test_counts_per_week_code_profile_console_and_environment(client: FlaskClient) -> None:
    _staff(client)
    html = page(client)
    weeks = table(html, "per-week")
    assert len(weeks) == 12
    assert next(iter(weeks)) == "7 Sep 2026"
    assert weeks["16 Nov 2026"] == "3"
    assert weeks["23 Nov 2026"] == "2"
    assert sum(int(v) for v in weeks.values()) == 5
    assert table(html, "by-code") == {
        "LOGIN-06: Your User ID has reached its expiry date.": "2",
        "No message (screenshot only)": "1",
        "Other text (no guide entry recognised)": "1",
    }
    assert table(html, "by-kind") == {"Contact Us": "4", "Resend Admin User ID": "1"}
    assert table(html, "by-profile") == {
        "Administrator": "3",
        "Claims Handler": "1",
        "Not stated (Resend Admin User ID)": "1",
    }
    assert table(html, "by-console") == {
        "Admin Console": "2",
        "Portal": "2",
        "Not stated (Resend Admin User ID)": "1",
    }
    assert table(html, "by-environment") == {"Live": "4", "Training": "1"}
    assert 'href="/guides/troubleshooting#LOGIN-06"' in html


@pytest.mark.usefixtures("data_set")
def test_medians_in_working_time_and_the_guide_figures(client: FlaskClient) -> None:
    _staff(client)
    html = page(client)
    # First replies 1.5 h, 3 h, 0.5 h; resolutions 8.5 h (one working day), 4 h, 2 h.
    assert figure(html, "Median time to first reply").startswith("1h 30m working time, 3 requests")
    assert figure(html, "Median time to resolve").startswith("4h 00m working time, 3 requests")
    assert figure(html, "Contact Us requests sent after suggestions were shown") == "1 of 4 (25%)"
    assert figure(html, "Deflection rate").startswith("80%: 4 of 5 Contact Us page views")


@pytest.mark.usefixtures("data_set")
def test_a_chosen_range_and_a_refused_one(client: FlaskClient) -> None:
    _staff(client)
    html = page(client, **{"from": "2026-11-17", "to": "2026-11-23"})
    assert table(html, "per-week") == {"17 Nov 2026": "2", "23 Nov 2026": "1"}
    assert "5 requests" not in html
    assert "3 requests from 17 November 2026 to 23 November 2026" in html
    with clock.frozen(NOW):
        bad = client.get(
            "/helpdesk/report", query_string={"from": "2026-11-30", "to": "2026-11-01"}
        )
        nonsense = client.get("/helpdesk/report", query_string={"from": "31/02/2026"})
        too_long = client.get("/helpdesk/report", query_string={"from": "2020-01-01"})
    assert bad.status_code == 400
    assert "The end date must be the same as or after the start date" in bad.get_data(as_text=True)
    assert nonsense.status_code == 400
    assert "Enter a real date" in nonsense.get_data(as_text=True)
    assert too_long.status_code == 400


@pytest.mark.usefixtures("data_set")
def test_the_chart_is_an_accessible_svg_without_script(client: FlaskClient) -> None:
    _staff(client)
    html = page(client)
    svg = re.search(r"<svg .*?</svg>", html, re.S)
    assert svg is not None
    chart = svg.group(0)
    assert 'role="img"' in chart
    assert 'aria-labelledby="chart-title chart-desc"' in chart
    assert '<title id="chart-title">Requests per week</title>' in chart
    assert "<script" not in html.split("</main>")[0].split("<main")[1]
    assert "<script" not in chart
    assert " on" not in re.sub(r'"[^"]*"', '""', chart)  # no event-handler attributes
    bars = re.findall(r'<rect class="chart-bar"[^>]*height="([\d.]+)"', chart)
    assert len(bars) == 12
    heights = [float(h) for h in bars]
    assert heights[10] == max(heights) > heights[11] > 0 == heights[0]
    assert "<title>Week from 16 Nov 2026: 3</title>" in chart


@pytest.mark.usefixtures("data_set")
def test_the_csv_has_every_table_and_no_formula(client: FlaskClient) -> None:
    _staff(client)
    with clock.frozen(NOW):
        response = client.get("/helpdesk/report.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    disposition = response.headers["Content-Disposition"]
    assert disposition == 'attachment; filename="helpdesk-report-2026-09-07-to-2026-11-25.csv"'
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["Table", "Row", "Value"]
    cells = {(t, r): v for t, r, v in rows[1:]}
    assert cells[("Requests per week", "Week from 2026-11-16")] == "3"
    code_row = (
        "Contact Us requests by error code",
        "LOGIN-06: Your User ID has reached its expiry date.",
    )
    assert cells[code_row] == "2"
    assert cells[("Requests by environment", "Training")] == "1"
    assert cells[("Times", "Median time to resolve (working hours)")] == "4.00"
    assert cells[("Deflection", "Deflected (no form within the hour)")] == "4"
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


def test_the_csv_guards_formulas() -> None:
    from portal.audit.export import safe_cell

    assert safe_cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"


def test_an_empty_range_still_renders(client: FlaskClient) -> None:
    _staff(client)
    html = page(client)
    assert "0 requests" in html
    assert figure(html, "Median time to first reply").startswith("–")
    assert figure(html, "Deflection rate").startswith("–")
    assert "None in this range" in html


@pytest.mark.parametrize("profile", [Profile.HELPDESK, Profile.PORTAL_TEAM])
def test_helpdesk_and_portal_team_may_open_it(client: FlaskClient, profile: Profile) -> None:
    sign_in_as(client, profile)
    for path in ("/helpdesk/report", "/helpdesk/report.csv"):
        assert client.get(path).status_code == 200


@pytest.mark.parametrize("profile", [Profile.ADMINISTRATOR, Profile.CLAIMS_HANDLER])
def test_everyone_else_is_refused(client: FlaskClient, profile: Profile) -> None:
    sign_in_as(client, profile)
    for path in ("/helpdesk/report", "/helpdesk/report.csv"):
        assert client.get(path).status_code == 403


def test_anonymous_visitors_are_sent_to_log_in(client: FlaskClient) -> None:
    for path in ("/helpdesk/report", "/helpdesk/report.csv"):
        response = client.get(path)
        assert response.status_code in (302, 401)
        assert (
            "report" not in response.get_data(as_text=True).lower() or response.status_code == 302
        )


def test_the_nav_links_the_report_for_staff_only(client: FlaskClient) -> None:
    sign_in_as(client, Profile.HELPDESK)
    assert 'href="/helpdesk/report"' in client.get("/helpdesk/requests").get_data(as_text=True)

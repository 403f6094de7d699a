"""Deflection, counted from aggregates (issue 14 point 7): the Contact Us form carries a signed
random page-view id; suggestions shown for it start a row, a form sent from it within the hour
marks it, and the nightly fold turns rows into hourly counters and deletes them."""

from __future__ import annotations

import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlalchemy import select

from portal import clock
from portal.db import write_transaction
from portal.extensions import db
from portal.helpdesk import page_views
from portal.helpdesk.page_views import DeflectionHour
from portal.helpdesk.page_views import PageView

from .conftest import contact_data
from .conftest import post_contact

T0 = datetime(2026, 11, 10, 10, 20, tzinfo=UTC)


def page_view_of(html: str) -> str:
    found = re.search(
        r'<input type="hidden" name="page_view" id="page-view" value="([^"]+)">', html
    )
    assert found is not None
    return found.group(1)


def open_form(client: FlaskClient) -> str:
    return page_view_of(client.get("/helpdesk/contact").get_data(as_text=True))


def suggest(client: FlaskClient, page_view: str, text: str = "my account is locked") -> str:
    response = client.get(
        "/helpdesk/contact/suggestions",
        query_string={"error_message": text, "page_view": page_view},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    return response.get_data(as_text=True)


def fold(now: datetime) -> dict[str, int]:
    with write_transaction(db.session):
        return page_views.fold(now)


def hours() -> list[tuple[datetime, int, int]]:
    rows = db.session.execute(
        select(DeflectionHour.hour, DeflectionHour.shown, DeflectionHour.sent).order_by(
            DeflectionHour.hour
        )
    )
    return [(h, shown, sent) for h, shown, sent in rows]


def pending() -> int:
    return int(db.session.scalar(select(func.count()).select_from(PageView)))


def test_each_rendering_gets_its_own_signed_id_and_the_textarea_sends_it(
    client: FlaskClient,
) -> None:
    html = client.get("/helpdesk/contact").get_data(as_text=True)
    first = page_view_of(html)
    assert first != open_form(client)
    assert page_views.parse(first) is not None
    tag = re.search(r"<textarea[^>]*name=\"error_message\"[^>]*>", html)
    assert tag is not None
    assert 'hx-include="#page-view"' in tag.group(0)
    # Nothing about the page view is in a cookie: the only cookie is the existing session.
    response = client.get("/helpdesk/contact")
    assert first not in " ".join(response.headers.getlist("Set-Cookie"))


def test_suggestions_shown_and_no_form_is_deflected(client: FlaskClient) -> None:
    with clock.frozen(T0):
        view = open_form(client)
        assert "LOGIN-02" in suggest(client, view)
        suggest(client, view, "expired")  # shown again: still one page view
    assert pending() == 1
    assert fold(T0 + timedelta(minutes=59)) == {"folded": 0, "hours": 0}  # not decided yet
    assert fold(T0 + timedelta(hours=1, minutes=1)) == {"folded": 1, "hours": 1}
    assert hours() == [(datetime(2026, 11, 10, 10, tzinfo=UTC), 1, 0)]
    assert pending() == 0  # only the counters remain


def test_a_form_sent_within_the_hour_is_not_deflected(client: FlaskClient) -> None:
    with clock.frozen(T0):
        view = open_form(client)
        suggest(client, view)
        clock.advance(timedelta(minutes=40))
        response = post_contact(client, contact_data(page_view=view))
        assert response.status_code == 302
    fold(T0 + timedelta(hours=2))
    assert hours() == [(datetime(2026, 11, 10, 10, tzinfo=UTC), 1, 1)]


def test_a_form_sent_after_the_hour_counts_as_deflected(client: FlaskClient) -> None:
    with clock.frozen(T0):
        view = open_form(client)
        suggest(client, view)
        clock.advance(timedelta(minutes=61))
        assert post_contact(client, contact_data(page_view=view)).status_code == 302
    fold(T0 + timedelta(hours=3))
    assert hours() == [(datetime(2026, 11, 10, 10, tzinfo=UTC), 1, 0)]


def test_no_suggestion_shown_counts_nothing_and_forged_ids_are_ignored(
    client: FlaskClient,
) -> None:
    with clock.frozen(T0):
        view = open_form(client)
        suggest(client, view, "hello there")  # nothing suggested
        suggest(client, "forged.id", "my account is locked")
        suggest(client, view[:-2] + "xx", "my account is locked")  # bad signature
        assert post_contact(client, contact_data(page_view=view)).status_code == 302
    assert pending() == 0


def test_folding_twice_adds_to_the_same_hour(client: FlaskClient) -> None:
    with clock.frozen(T0):
        suggest(client, open_form(client))
    fold(T0 + timedelta(hours=2))
    with clock.frozen(T0 + timedelta(minutes=30)):
        suggest(client, open_form(client))
    fold(T0 + timedelta(hours=2))
    assert hours() == [(datetime(2026, 11, 10, 10, tzinfo=UTC), 2, 0)]


@pytest.mark.config(RATELIMIT_ENABLED=True, PORTAL_HELPDESK_SUGGESTIONS_RATE_LIMIT="2 per minute")
def test_suggestions_are_rate_limited_per_address(client: FlaskClient) -> None:
    view = open_form(client)
    suggest(client, view)
    suggest(client, view)
    refused = client.get(
        "/helpdesk/contact/suggestions",
        query_string={"error_message": "expired", "page_view": view},
        headers={"HX-Request": "true"},
    )
    assert refused.status_code == 429  # htmx swaps nothing: the suggestions stop updating

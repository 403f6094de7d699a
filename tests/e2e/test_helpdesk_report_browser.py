"""The Helpdesk report in real Chromium with realistic data (50 requests over twelve weeks, long
names and messages): the SVG chart shows without any script, and the page never scrolls
sideways at 1366 or 390 px; no CSP violation, console error or page error."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from flask import Flask

from portal import clock
from portal import messages
from portal.accounts.models import Profile
from portal.db import write_transaction
from portal.extensions import db
from portal.helpdesk.models import EventKind
from portal.helpdesk.page_views import PageView
from portal.helpdesk.timeline import add_event
from tests.factories import make_user
from tests.helpdesk_factories import make_request

from .conftest import Watch
from .conftest import skip_module_without_browser
from .test_helpdesk_queue_browser import staff_log_in

if TYPE_CHECKING:
    from playwright.sync_api import Page

skip_module_without_browser()

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: Set to a directory to keep screenshots of the report (for looking at it by eye).
SHOTS = os.environ.get("PORTAL_E2E_SHOTS")


def _fifty_requests() -> None:
    now = clock.now()
    texts = [m.text for m in messages.MESSAGES]
    for i in range(50):
        created = now - timedelta(days=i * 83 // 50, hours=i % 7)
        req = make_request(
            name=f"Bartholomew-Maximilian Featherstonehaugh-Cholmondeley {i}",
            organisation_name="The Extraordinarily Long-Named Claims Management Partnership LLP",
            stated_role="claims_handler" if i % 3 else "administrator",
            console="portal" if i % 2 else "admin_console",
            environment="training" if i % 5 == 0 else "live",
            error_message=None if i % 11 == 0 else texts[i % len(texts)],
            created_at=created,
        )
        if i % 2 == 0:
            with write_transaction(db.session):
                add_event(req, EventKind.REPLY, None, created + timedelta(hours=3), details="x")
                add_event(
                    req,
                    EventKind.STATUS_CHANGED,
                    None,
                    created + timedelta(days=1),
                    from_status="in_progress",
                    to_status="resolved",
                )


@pytest.mark.parametrize("width", [1366, 390])
def test_the_report_fits_the_screen_and_draws_its_chart(
    page: Page, e2e_db: Flask, watch: Watch, width: int
) -> None:
    staff = make_user(user_id=f"report-{width}", profile=Profile.HELPDESK)
    _fifty_requests()
    db.session.rollback()
    page.set_viewport_size({"width": width, "height": 900})
    staff_log_in(page, staff.user_id)
    page.get_by_role("link", name="Helpdesk report").click()
    page.wait_for_load_state("networkidle")
    page.get_by_role("heading", name="Helpdesk report").wait_for()
    chart = page.get_by_role("img", name="Requests per week")
    chart.wait_for()
    box = chart.bounding_box()
    assert box is not None
    assert 0 < box["width"] <= width
    assert page.locator("svg rect.chart-bar").count() == 12
    assert page.locator("main script").count() == 0
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/report-{width}.png", full_page=True)
    watch.assert_clean(page)


def test_typing_counts_a_page_view_from_the_hidden_id_and_no_cookie(
    page: Page, e2e_db: Flask, watch: Watch
) -> None:
    """htmx sends the form's page-view id with the suggestions request (``hx-include``, no
    script of ours); the server counts that page view, and the browser holds no new cookie."""
    page.goto("/helpdesk/contact")
    view = page.locator("#page-view").get_attribute("value")
    assert view
    cookies_before = {c["name"] for c in page.context.cookies()}
    with page.expect_response(lambda r: "/helpdesk/contact/suggestions" in r.url) as answer:
        page.get_by_label("The exact error message").press_sequentially("my account is locked")
    assert "page_view=" in answer.value.url
    page.locator("#suggestions a[href='/guides/troubleshooting#LOGIN-02']").wait_for()
    random_part = view.split(".", 1)[0]  # the id; after the dot, its signature
    db.session.rollback()
    assert db.session.get(PageView, random_part) is not None
    db.session.rollback()
    assert {c["name"] for c in page.context.cookies()} <= cookies_before | {
        "__Host-session",
        "session",
    }
    watch.assert_clean(page)

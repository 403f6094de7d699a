"""The Helpdesk queue in real Chromium: the status select saves in place (HTMX, CSRF from
``hx-headers``) and the timeline follows without a reload; the search narrows as you type; no
CSP violation, console error or page error on the way."""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING

import pytest
from flask import Flask

from portal.accounts.models import Profile
from portal.extensions import db
from portal.helpdesk.models import HelpdeskRequest
from tests.factories import PASSWORD
from tests.factories import make_user
from tests.helpdesk_factories import make_request

from .conftest import Watch
from .conftest import skip_module_without_browser

if TYPE_CHECKING:
    from playwright.sync_api import Page

skip_module_without_browser()

pytestmark = [pytest.mark.browser, pytest.mark.slow]

_tags = itertools.count(1)


def staff_log_in(page: Page, user_id: str) -> None:
    page.goto("/portal/login")
    page.get_by_label("User ID").fill(user_id)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    # staff land on their work page (issue 12 point 5)
    page.wait_for_url(re.compile(r"/(portal/?|operator/|helpdesk/requests)$"))


def status_in_db(pk: int) -> str:
    db.session.rollback()
    db.session.expire_all()
    req = db.session.get(HelpdeskRequest, pk)
    assert req is not None
    status = req.status
    db.session.rollback()
    return status


def test_status_saves_in_place_and_the_timeline_follows(
    page: Page, e2e_db: Flask, watch: Watch
) -> None:
    tag = f"hq{next(_tags)}x"
    staff = make_user(user_id=f"{tag}-staff", profile=Profile.HELPDESK)
    req = make_request(email=f"{tag}@example.com")
    pk, ref = req.id, req.reference
    db.session.rollback()
    staff_log_in(page, staff.user_id)
    page.get_by_role("link", name="Helpdesk queue").click()
    page.wait_for_url(re.compile(r"/helpdesk/requests$"))
    page.get_by_role("link", name=ref).click()
    page.wait_for_load_state("networkidle")
    page.evaluate("window.__marker = 1")
    with page.expect_response(lambda r: r.url.endswith(f"/{pk}/status")) as answer:
        page.get_by_role("combobox", name="Status").select_option("in_progress")
    assert answer.value.status == 200
    page.locator("#request-status").get_by_text("Saved: the status is now In progress.").wait_for()
    page.locator("#request-timeline").get_by_text("from New to In progress").wait_for()
    assert page.evaluate("window.__marker") == 1, "the page was reloaded"
    assert status_in_db(pk) == "in_progress"
    # The swapped select keeps working.
    with page.expect_response(lambda r: r.url.endswith(f"/{pk}/status")):
        page.get_by_role("combobox", name="Status").select_option("resolved")
    page.locator("#request-timeline").get_by_text("from In progress to Resolved").wait_for()
    assert status_in_db(pk) == "resolved"
    watch.assert_clean(page)


def test_the_queue_search_narrows_as_you_type(page: Page, e2e_db: Flask, watch: Watch) -> None:
    tag = f"hs{next(_tags)}x"
    staff = make_user(user_id=f"{tag}-staff", profile=Profile.HELPDESK)
    wanted = make_request(email=f"{tag}-wanted@example.com")
    make_request(email=f"{tag}-other@example.com")
    wanted_ref = wanted.reference
    db.session.rollback()
    staff_log_in(page, staff.user_id)
    page.goto("/helpdesk/requests")
    page.evaluate("window.__marker = 1")
    page.get_by_label("Search by reference, name, email, User ID or error text").press_sequentially(
        f"{tag}-wan", delay=20
    )
    page.wait_for_url(re.compile(rf"q={tag}-wan"))
    rows = page.locator("#queue-rows tr")
    rows.first.get_by_text(wanted_ref).wait_for()
    assert rows.count() == 1
    assert page.evaluate("window.__marker") == 1, "the page was reloaded"
    watch.assert_clean(page)


# --- a working day's queue: no sideways scroll, one line per row (issue 14) ---------------------

LONG_NAME = "Bartholomew Fitzwilliam-Featherstonehaugh Montgomery-Smythe"
LONG_FIRM = "The Extraordinarily Long-Named Insurance Claims Handling Partnership LLP"
LONG_ERROR = (
    "Your User ID has expired. Ask your organisation's Administrator to extend it, and then "
    "try again; if that does not work contact the Helpdesk with this whole message please"
)


def _no_sideways_scroll(page: Page) -> None:
    scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll <= inner, f"scrollWidth {scroll} > innerWidth {inner} at {page.url}"


@pytest.mark.parametrize("width", [1366, 390])
def test_the_queue_and_a_request_page_fit_the_screen(
    page: Page, e2e_db: Flask, watch: Watch, width: int
) -> None:
    tag = f"hw{next(_tags)}x"
    staff = make_user(user_id=f"{tag}-staff", profile=Profile.HELPDESK)
    first = None
    for i in range(50):
        req = make_request(
            name=f"{LONG_NAME} {i}",
            email=f"{tag}.{i}.a.very.long.address.indeed@an-extremely-long-domain-name.example",
            organisation_name=LONG_FIRM,
            error_message=LONG_ERROR,
            details="I tried everything. " * 20,
        )
        first = first or req
    assert first is not None
    pk = first.id
    db.session.rollback()
    page.set_viewport_size({"width": width, "height": 900})
    staff_log_in(page, staff.user_id)
    for query in ("", "?sort=age", "?view=unassigned"):
        page.goto(f"/helpdesk/requests{query}")
        page.wait_for_load_state("networkidle")
        _no_sideways_scroll(page)
    if width == 1366:
        # One line per row: every row is as tall as the first (no wrapping).
        heights = page.eval_on_selector_all(
            "#queue-rows tr", "rows => rows.map(r => r.getBoundingClientRect().height)"
        )
        assert len(heights) == 50
        assert max(heights) < 48, heights
        assert max(heights) - min(heights) < 2, heights
        # References are whole, neither wrapped nor cut ("HD-" / "000001" was seen).
        cut = page.eval_on_selector_all(
            "#queue-rows tr > :nth-child(2) a",
            "links => links.filter(a => a.parentElement.scrollWidth > a.parentElement.clientWidth)"
            ".length",
        )
        assert cut == 0
    page.goto(f"/helpdesk/requests/{pk}")
    page.wait_for_load_state("networkidle")
    _no_sideways_scroll(page)
    width_of_select = page.eval_on_selector("#section", "e => e.getBoundingClientRect().right")
    assert width_of_select <= width
    watch.assert_clean(page)

"""The daily-use polish of issue 12 point 5 in real Chromium: one assertion (at least) for each
point that was seen in the browser.  The server's side of each is tested over HTTP in
tests/console/test_console_polish.py; the own row's "(you)" mark is in test_console_browser.py.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from flask import Flask

from portal import clock
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.db import write_transaction
from portal.extensions import db
from tests.factories import PASSWORD
from tests.factories import make_org
from tests.factories import make_user

from .conftest import Watch
from .conftest import log_in
from .conftest import skip_module_without_browser

if TYPE_CHECKING:
    from playwright.sync_api import Page

skip_module_without_browser()

pytestmark = [pytest.mark.browser, pytest.mark.slow]

_tags = itertools.count(1)


@dataclass(frozen=True)
class Org:
    admin: str
    admin_pk: int
    handler: str
    handler_pk: int
    tag: str


@pytest.fixture
def org(e2e_db: Flask) -> Org:
    """An Administrator and one Claims Handler with nothing in its audit trail but its creation."""
    tag = f"p{next(_tags)}x"
    organisation = make_org(f"Polish {tag}")
    admin = make_user(organisation, user_id=f"{tag}-admin", profile=Profile.ADMINISTRATOR)
    handler = make_user(organisation, user_id=f"{tag}-handler")
    built = Org(admin.user_id, admin.id, handler.user_id, handler.id, tag)
    db.session.rollback()  # no read transaction left open while the server works
    return built


def shown(day: object) -> str:
    """A date as every page shows it (portal/display.py)."""
    return f"{day.day} {day:%b %Y}"  # type: ignore[attr-defined]


#: A users table's cells by column, counted from the row's end as app.css does (the list has a
#: tick-box column first, a user's page does not; no label is repeated on each row).
CELL = {
    label: f"td:nth-last-child({n})"
    for n, label in enumerate(
        (
            "Second factor",
            "Expiry date",
            "Last login",
            "Why disabled",
            "Active",
            "Enabled",
            "Profile",
            "Name",
        ),
        start=1,
    )
}


def test_saving_the_expiry_date_updates_the_whole_user_page(
    page: Page, org: Org, watch: Watch
) -> None:
    """The row's date, the status line and the audit trail change with the save (no reload)."""
    log_in(page, org.admin)
    page.goto(f"/console/users/{org.handler_pk}")
    page.evaluate("window.__marker = 1")
    new_date = clock.today() + timedelta(days=500)

    page.locator("#expires_on").fill(new_date.isoformat())
    with page.expect_response(lambda r: r.url.endswith(f"/users/{org.handler_pk}/expiry")):
        page.get_by_role("button", name="Save expiry date").click()
    page.wait_for_function("() => !document.querySelector('.htmx-request')")

    row = page.locator(f"#user-{org.handler_pk}")
    assert row.locator(CELL["Expiry date"]).inner_text() == shown(new_date)
    assert page.locator("#trail tbody tr").first.locator("td").nth(2).inner_text() == (
        "Expiry date changed"
    )
    assert "Nothing recorded yet" not in page.locator("#trail").inner_text()
    assert page.evaluate("window.__marker") == 1, "the page was reloaded"
    watch.assert_clean(page)


def test_reset_password_asks_first_and_a_refresh_shows_it_no_more(
    page: Page, org: Org, watch: Watch
) -> None:
    log_in(page, org.admin)
    page.goto(f"/console/users/{org.handler_pk}")
    page.get_by_role("link", name="Reset password").click()
    assert page.locator("h1").inner_text() == f"Reset the password of {org.handler}?"
    page.get_by_role("button", name="Reset password").click()
    page.wait_for_url(re.compile(r"/one-time-password/"))
    assert len(page.locator(".one-time-password code").inner_text()) >= 12
    page.reload()
    assert page.locator(".one-time-password").count() == 0
    assert "already been shown" in page.locator("#already-shown").inner_text()
    watch.assert_clean(page)


@pytest.fixture
def crowded(e2e_db: Flask) -> Org:
    """An organisation of 50 users with long User IDs and names."""
    tag = f"c{next(_tags)}x"
    organisation = make_org(f"Crowded {tag}")
    admin = make_user(organisation, user_id=f"{tag}-admin", profile=Profile.ADMINISTRATOR)
    pks = [
        make_user(
            organisation,
            user_id=f"{tag}-{n:02d}-alexandrina.featherstone",
            expires_on=clock.today() + timedelta(days=10 + n),
        ).id
        for n in range(50)
    ]
    db.session.rollback()
    with write_transaction(db.session):
        for n, pk in enumerate(pks):
            user = db.session.get(User, pk)
            assert user is not None
            user.full_name = f"Alexandrina Featherstonehaugh-Cholmondeley {n:02d}"
    first = db.session.get(User, pks[0])
    assert first is not None
    built = Org(admin.user_id, admin.id, first.user_id, first.id, tag)
    db.session.rollback()
    return built


def no_sideways_scroll(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_the_users_list_fits_at_1366_and_becomes_cards_at_390(
    page: Page, crowded: Org, watch: Watch
) -> None:
    log_in(page, crowded.admin)
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto("/console/users")
    page.wait_for_load_state("networkidle")
    assert page.locator("#user-rows tr").count() == 50
    assert no_sideways_scroll(page)
    # one line a row: the long name and the dates do not wrap
    name = page.locator(f"#user-{crowded.handler_pk} {CELL['Name']}")
    line = float(page.evaluate("parseFloat(getComputedStyle(document.body).lineHeight) || 24"))
    assert name.bounding_box()["height"] < 2 * line  # type: ignore[index]

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.wait_for_load_state("networkidle")
    assert no_sideways_scroll(page)
    row = page.locator(f"#user-{crowded.handler_pk}")
    for label in ("Active", "Why disabled", "Last login", "Expiry date"):
        cell = row.locator(CELL[label])
        # the phone layout names each cell (app.css, by column)
        before = cell.evaluate("c => getComputedStyle(c, '::before').content")
        assert before == f'"{label}:"', (label, before)
        box = cell.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= 390, label
    watch.assert_clean(page)


def test_a_drill_down_shows_its_filter_as_a_chip_that_removes_it(
    page: Page, crowded: Org, watch: Watch
) -> None:
    log_in(page, crowded.admin)
    page.goto("/console/users?expiring=15")
    chip = page.locator(".chips .chip")
    assert chip.inner_text().startswith("Expiring within 15 days")
    count = page.locator(".results-count").inner_text()
    assert count == "6 users expiring within 15 days"
    chip.click()
    page.wait_for_url(re.compile(r"/console/users$"))
    assert page.locator(".chips").count() == 0
    watch.assert_clean(page)


def test_a_session_ended_by_a_flag_change_lands_on_login_10(
    page: Page, org: Org, e2e_db: Flask, watch: Watch
) -> None:
    """The handler is logged in; its access is removed; whatever it opens next, the login page
    it reaches says LOGIN-10 with the guide's link."""
    page.goto("/portal/login")
    page.get_by_label("User ID").fill(org.handler)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/portal/$"))
    with write_transaction(db.session):
        user = db.session.get(User, org.handler_pk)
        assert user is not None
        user.enabled = False
        user.active = False
        user.rotate_session_token()
    db.session.rollback()
    page.goto("/guides/")  # a public page notices first
    page.get_by_role("link", name="Portal login").click()
    message = page.locator("#login-message")
    assert "Your session has ended" in message.inner_text()
    guide = message.get_by_role("link", name="what this means and what to do")
    assert guide.get_attribute("href") == "/guides/troubleshooting#LOGIN-10"
    watch.assert_clean(page)


def test_the_first_login_change_asks_only_for_the_new_password_calmly(
    page: Page, e2e_db: Flask, watch: Watch
) -> None:
    firm = f"Acme{next(_tags)}"
    user = make_user(make_org(firm), one_time=True)
    user_id = user.user_id
    db.session.rollback()
    page.goto("/portal/login")
    page.get_by_label("User ID").fill(user_id)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/account/password$"))
    assert page.get_by_label("Current password").count() == 0
    notice = page.locator("#must-change")
    assert "Choose a password of your own" in notice.inner_text()
    assert "notice-error" not in (notice.get_attribute("class") or "")
    # the password policy names the word it refused (issue 12 point 5)
    refused = f"{firm.lower()} lighthouse winter garden 5"
    page.get_by_label("New password", exact=True).fill(refused)
    page.get_by_label("Confirm new password").fill(refused)
    page.get_by_role("button", name="Change password").click()
    assert f"“{firm}” (your organisation’s name)" in page.locator(".error-summary").inner_text()
    watch.assert_clean(page)


def test_404_is_the_sites_page_and_the_nav_marks_the_current_page(
    page: Page, org: Org, watch: Watch
) -> None:
    log_in(page, org.admin)
    page.goto("/console/users")
    current = page.locator("nav[aria-label='Main'] a[aria-current='page']")
    assert current.inner_text() == "Users"
    watch.expect_console_error(r"status of 404")
    page.goto("/console/no-such-page")
    assert page.locator("h1").inner_text() == "Page not found"
    page.locator("#way-back").click()
    page.wait_for_url(re.compile(r"/console/$"))
    watch.assert_clean(page)


def test_forgotten_password_carries_the_user_id_typed(page: Page, org: Org, watch: Watch) -> None:
    page.goto("/console/login")
    page.get_by_label("User ID").fill(org.admin)
    page.get_by_label("Password").fill("not the password at all")
    page.get_by_role("button", name="Log in").click()
    page.locator("#forgotten").click()
    assert page.get_by_label("User ID").input_value() == org.admin
    watch.assert_clean(page)

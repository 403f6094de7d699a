"""Access reviews and the lockout warning in real Chromium (issue 12, "Done when"): an access
review from the dashboard to a signed-off CSV downloaded and read back, with R4's exact
question before a removal and paging between the users; the dashboard's at-risk warning with
its fix one click away.  Each page is looked at at 1366 and 390 px without a sideways scroll,
and with no CSP violation, console error or page error on the way."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from flask import Flask

from portal import clock
from portal.accounts.models import Profile
from portal.extensions import db
from tests.factories import make_org
from tests.factories import make_user

from .conftest import flags
from .conftest import log_in
from .conftest import skip_module_without_browser

if TYPE_CHECKING:
    from playwright.sync_api import Page

skip_module_without_browser()

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CONFIRM = "Are you sure you want to remove this User’s access?"
LONG = "Bartholomew Featherstonehaugh-Cholmondeley-Worthington"
_tags = itertools.count(1)


def assert_no_sideways_scroll(page: Page) -> None:
    for width, height in ((1366, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (
            f"a sideways scroll at {width} px"
        )
    page.set_viewport_size({"width": 1366, "height": 900})


def test_an_access_review_from_start_to_a_signed_export(page: Page, e2e_db: Flask) -> None:
    tag = f"rv{next(_tags)}x"
    org = make_org(f"Review {tag} Insurance Brokers and Claims Handling Partners")
    admin = make_user(org, user_id=f"{tag}-admin", profile=Profile.ADMINISTRATOR)
    make_user(org, user_id=f"{tag}-admin2", profile=Profile.ADMINISTRATOR)
    handlers = [make_user(org, user_id=f"{tag}-h{n:02d}") for n in range(55)]
    leaver = handlers[0]
    from portal.db import write_transaction

    with write_transaction(db.session):
        for n, user in enumerate(handlers):
            db.session.merge(user).full_name = f"{LONG} {n:02d}"
    db.session.rollback()

    log_in(page, admin.user_id)
    page.get_by_role("link", name="Start an access review").click()
    assert page.locator("#review-scope").inner_text() == "All users"
    assert page.locator("#review-count").inner_text() == "57 users"
    page.get_by_role("button", name="Start the review").click()
    page.wait_for_url("**/console/reviews/*")
    assert "Access review started: 57 users to review." in page.content()
    assert_no_sideways_scroll(page)

    # Remove one through its own row: R4's question first, on a page of its own.
    page.get_by_role("button", name=f"Remove access of {leaver.user_id}").click()
    assert page.locator("#confirm-question").inner_text() == CONFIRM
    page.get_by_role("button", name="OK", exact=True).click()
    page.wait_for_url("**/console/reviews/*")
    assert f"Access removed for 1 user: {leaver.user_id}." in page.content()
    assert (flags(leaver.id).enabled, flags(leaver.id).active) == (False, False)

    # Keep everyone else, a page of ticked boxes at a time (the pager swaps the list in place).
    while True:
        for box in page.locator("#review-items input[name=item]").all():
            box.check()
        page.get_by_role("button", name="Keep ticked users").click()
        page.wait_for_load_state("networkidle")
        assert "Kept " in page.content()
        next_link = page.locator("#review-items a[rel=next]")
        if not next_link.count():
            break
        next_link.click()
        page.wait_for_url("**page=*")
        page.wait_for_load_state("networkidle")
    page.goto(page.url.split("?")[0])
    assert "57 of 57" in page.locator("#review-progress").inner_text()

    page.get_by_label(f"I, {admin.full_name}").check()
    page.get_by_role("button", name="Finish and sign off").click()
    page.wait_for_load_state("networkidle")
    assert "The review is finished and signed off." in page.content()
    assert admin.user_id in page.locator("#review-signed-off").inner_text()
    assert_no_sideways_scroll(page)

    with page.expect_download() as download_info:
        page.locator("#review-csv").click()
    download = download_info.value
    assert download.suggested_filename.startswith("access-review-review-")
    text = Path(download.path()).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 57
    by_user = {row["user_id"]: row for row in rows}
    assert (by_user[leaver.user_id]["decision"], by_user[leaver.user_id]["outcome"]) == (
        "remove",
        "removed",
    )
    assert by_user[handlers[1].user_id]["decision"] == "keep"
    assert {row["signed_off_by"] for row in rows} == {admin.user_id}
    assert all(row["finished_at"] and row["decided_by"] == admin.user_id for row in rows)

    page.get_by_role("link", name="Printable record").click()
    assert page.get_by_role("heading", level=1).inner_text().startswith("Access review")
    assert page.locator("link[media=print]").count() == 1
    assert_no_sideways_scroll(page)


def test_the_dashboard_warns_when_one_administrator_is_left(page: Page, e2e_db: Flask) -> None:
    tag = f"rk{next(_tags)}x"
    org = make_org(f"Risk {tag}")
    lonely = make_user(
        org,
        user_id=f"{tag}-lonely",
        profile=Profile.ADMINISTRATOR,
        expires_on=clock.today() + timedelta(days=10),
    )
    db.session.rollback()
    log_in(page, lonely.user_id)
    warning = page.locator("#lockout-risk")
    assert "only one Administrator with access" in warning.inner_text()
    assert f"Extend the expiry date of {lonely.user_id}" in warning.inner_text()
    assert_no_sideways_scroll(page)
    page.get_by_role("link", name="Create another Administrator").click()
    page.wait_for_url("**/console/users/new?profile=administrator")
    assert page.get_by_label("Profile").input_value() == "administrator"

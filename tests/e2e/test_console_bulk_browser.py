"""Bulk actions and the CSV import in real Chromium (issue 12 "Done when"; docs/rules.md §4
"Housekeeping at scale"): removing access asks R4's exact question once, with the number of
users beside it, and the summary lists a refused row with the rule's reason; "select all that
match" follows the list's filters; an import's preview, then its confirmation.  The pages fit
the window at 1366 and 390 px, with 50 long-named rows.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from flask import Flask

from portal import clock
from portal import messages
from portal.accounts import rules
from portal.accounts.models import Profile
from portal.extensions import db
from tests.factories import make_org
from tests.factories import make_user

from .conftest import Flags
from .conftest import Watch
from .conftest import flags
from .conftest import log_in
from .conftest import skip_module_without_browser

if TYPE_CHECKING:
    from playwright.sync_api import Dialog
    from playwright.sync_api import Page

skip_module_without_browser()

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CONFIRM = "Are you sure you want to remove this User’s access?"
REMOVED = Flags(enabled=False, active=False, reason=None)
HAS_ACCESS = Flags(enabled=True, active=True, reason=None)
_tags = itertools.count(1)


def _org(rows: int = 3, long_names: bool = False) -> tuple[str, int, list[int], str]:
    tag = f"b{next(_tags)}k"
    organisation = make_org(f"Bulk {tag}")
    admin = make_user(organisation, user_id=f"{tag}-admin", profile=Profile.ADMINISTRATOR)
    handlers = []
    for n in range(rows):
        uid = f"{tag}-handler-{n:02d}" + ("-with-a-rather-long-user-id" if long_names else "")
        handlers.append(make_user(organisation, user_id=uid[:64]).id)
    db.session.rollback()
    return admin.user_id, admin.id, handlers, tag


def _fits(page: Page) -> None:
    for width in (1366, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (
            f"wider than the window at {width} px"
        )
    page.set_viewport_size({"width": 1366, "height": 900})


def test_bulk_remove_asks_once_with_the_count_and_lists_the_refusal(
    page: Page, e2e_db: Flask, watch: Watch
) -> None:
    admin, admin_pk, handlers, _tag = _org()
    asked: list[str] = []

    def answer(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", answer)
    log_in(page, admin)
    page.goto("/console/users")
    page.wait_for_load_state("networkidle")
    for pk in (admin_pk, handlers[0], handlers[1]):
        page.locator(f"#select-{pk}").check()
    page.check("#bulk-action-remove_access")
    page.get_by_role("button", name="Apply to selected").click()
    page.wait_for_url("**/console/users/bulk/*")

    assert asked == [f"{CONFIRM} (3 users)"]
    assert flags(handlers[0]) == REMOVED
    assert flags(handlers[1]) == REMOVED
    assert flags(handlers[2]) == HAS_ACCESS
    assert flags(admin_pk) == HAS_ACCESS
    summary = page.locator("#bulk-summary").inner_text()
    assert "Changed: 2" in summary
    assert "Refused: 1" in summary
    refused = page.locator("#outcome-refused + table").inner_text()
    assert admin in refused
    assert messages.CONSOLE_REFUSALS[rules.Outcome.REFUSED_SELF] in refused
    _fits(page)
    watch.assert_clean(page)


def test_cancel_sends_nothing(page: Page, e2e_db: Flask, watch: Watch) -> None:
    admin, _admin_pk, handlers, _tag = _org()
    page.on("dialog", lambda dialog: dialog.dismiss())
    log_in(page, admin)
    page.goto("/console/users")
    page.wait_for_load_state("networkidle")
    page.locator(f"#select-{handlers[0]}").check()
    page.get_by_role("button", name="Apply to selected").click()
    page.wait_for_timeout(500)
    assert "/console/users/bulk" not in page.url
    assert flags(handlers[0]) == HAS_ACCESS
    watch.assert_clean(page)


def test_select_all_that_match_follows_the_filters(page: Page, e2e_db: Flask, watch: Watch) -> None:
    admin, _admin_pk, _handlers, tag = _org(rows=50, long_names=True)
    log_in(page, admin)
    page.goto("/console/users?profile=claims_handler")
    page.wait_for_load_state("networkidle")
    _fits(page)
    page.locator("#select-all").check()
    page.check("#bulk-action-extend_expiry")
    page.check("#bulk-months-6")
    page.get_by_role("button", name="Apply to selected").click()
    page.wait_for_url("**/console/users/bulk/*")
    assert "Changed: 50" in page.locator("#bulk-summary").inner_text()
    listed = " ".join(page.locator("table.bulk-items").all_inner_texts())
    assert admin not in listed  # the Administrator did not match the filter
    assert f"{tag}-handler-49" in listed
    _fits(page)
    watch.assert_clean(page)


def test_import_preview_then_confirm(page: Page, e2e_db: Flask, watch: Watch) -> None:
    admin, _admin_pk, _handlers, tag = _org()
    day = (clock.today() + timedelta(days=90)).isoformat()
    content = (
        "user_id;full_name;email;profile;expires_on\n"
        f"{tag}-imported;Imported Person;{tag}.imported@example.com;claims_handler;{day}\n"
        f"{tag}-handler-00;Renamed Handler;;;\n"
        f"{tag}-broken;Broken;not-an-email;claims_handler;\n"
    ).encode()
    log_in(page, admin)
    page.goto("/console/users")
    page.get_by_role("link", name="Import users from CSV").click()
    page.set_input_files(
        "#file", files=[{"name": "users.csv", "mimeType": "text/csv", "buffer": content}]
    )
    page.get_by_role("button", name="Preview the import").click()
    page.wait_for_url("**/console/users/import/*")
    summary = page.locator("#import-summary").inner_text()
    assert "Create: 1" in summary
    assert "Update: 1" in summary
    assert "Refused: 1" in summary
    assert "Bad email address" in page.locator("#outcome-refused + table").inner_text()
    _fits(page)
    page.locator("#delivery-email").check()
    page.get_by_role("button", name="Apply the import").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("h1").inner_text() == "Import applied"
    assert "1 user created" in page.content()
    watch.assert_clean(page)

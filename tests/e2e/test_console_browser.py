"""The users list's inline Enabled checkbox in real Chromium (issue 3, "Done when"; docs/rules.md
R4–R6; docs/security.md CP-01/CP-02): the exact confirm text, Cancel sends nothing, OK removes
access without a page reload, the three steps of R5, re-checking restores Active, the refusal of
one's own row, the search as you type; and no CSP violation, console error or page error on the way.

An Administrator of an organisation of a second Administrator and a few Claims Handlers works
on ``/console/users`` in a fresh browser context; the flags are read back from the database.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from flask import Flask

from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.extensions import db
from tests.factories import lock_out
from tests.factories import make_org
from tests.factories import make_user
from tests.factories import remove_access

from .conftest import Flags
from .conftest import Watch
from .conftest import flags
from .conftest import log_in
from .conftest import skip_module_without_browser

if TYPE_CHECKING:
    from playwright.sync_api import Browser
    from playwright.sync_api import Dialog
    from playwright.sync_api import Locator
    from playwright.sync_api import Page
    from playwright.sync_api import Request

skip_module_without_browser()

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CONFIRM = "Are you sure you want to remove this User’s access?"
HAS_ACCESS = Flags(enabled=True, active=True, reason=None)
REMOVED = Flags(enabled=False, active=False, reason=None)
LOCKED_OUT = Flags(enabled=False, active=True, reason="lockout")
#: Long enough for a request that should not have been sent to have reached the server.
QUIET_MS = 600

_tags = itertools.count(1)


@dataclass(frozen=True)
class Org:
    admin: str
    admin_pk: int
    admin2_pk: int
    handlers: dict[str, int]  # User ID → primary key
    tag: str


@pytest.fixture
def org(e2e_db: Flask) -> Org:
    """An organisation: two Administrators and three Claims Handlers, all with access."""
    tag = f"t{next(_tags)}x"
    organisation = make_org(f"Browser {tag}")
    admin = make_user(organisation, user_id=f"{tag}-admin", profile=Profile.ADMINISTRATOR)
    admin2 = make_user(organisation, user_id=f"{tag}-admin2", profile=Profile.ADMINISTRATOR)
    handlers = {
        f"{tag}-{name}": make_user(organisation, user_id=f"{tag}-{name}").id
        for name in ("alpha", "bravo", "charlie")
    }
    built = Org(admin.user_id, admin.id, admin2.id, handlers, tag)
    db.session.rollback()  # no read transaction left open while the server works
    return built


class Dialogs:
    """Answers every dialog as told (OK unless ``accept`` is False); remembers what was asked."""

    def __init__(self) -> None:
        self.accept = True
        self.seen: list[tuple[str, str]] = []

    def __call__(self, dialog: Dialog) -> None:
        self.seen.append((dialog.type, dialog.message))
        if self.accept:
            dialog.accept()
        else:
            dialog.dismiss()


@pytest.fixture
def dialogs(page: Page) -> Dialogs:
    answers = Dialogs()
    page.on("dialog", answers)
    return answers


@pytest.fixture
def toggles(page: Page) -> list[str]:
    """The Enabled POSTs the page sends."""
    sent: list[str] = []

    def on_request(request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/enabled"):
            sent.append(request.url)

    page.on("request", on_request)
    return sent


def users_page(page: Page, org: Org) -> None:
    log_in(page, org.admin)
    page.goto("/console/users")
    # Whatever the page loads after "load" (htmx "load" triggers) must land before the clicks:
    # a late swap above the table would move the checkboxes under the pointer.
    page.wait_for_load_state("networkidle")
    page.evaluate("window.__marker = 1")


def enabled_box(page: Page, pk: int) -> Locator:
    return page.locator(f"#enabled-{pk}")


def active_box(page: Page, pk: int) -> Locator:
    return page.locator(f"#user-{pk} input[aria-label^='Active:']")


def page_flags(page: Page, pk: int) -> tuple[bool, bool]:
    return enabled_box(page, pk).is_checked(), active_box(page, pk).is_checked()


def click_and_swap(page: Page, pk: int) -> int:
    """Click the Enabled checkbox; wait for the POST's answer and for htmx to settle the row."""
    with page.expect_response(lambda r: r.url.endswith(f"/users/{pk}/enabled")) as answer:
        enabled_box(page, pk).click()
    status = answer.value.status
    # The swapped row is a new element, no longer disabled by hx-disabled-elt; htmx removes
    # its htmx-request class from the (replaced) element once the request has settled.
    page.wait_for_function(
        """pk => {
            const box = document.getElementById("enabled-" + pk);
            return box && !box.disabled && !document.querySelector(".htmx-request");
        }""",
        arg=pk,
    )
    return status


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__marker") == 1, "the page was reloaded"


# --- the tests -----------------------------------------------------------------------------


def test_confirm_shows_the_exact_text_and_cancel_changes_nothing(
    page: Page, org: Org, dialogs: Dialogs, toggles: list[str], watch: Watch
) -> None:
    """(a) Unchecking asks, in the seed's words; Cancel sends nothing and puts the tick back."""
    pk = org.handlers[f"{org.tag}-alpha"]
    users_page(page, org)
    assert page_flags(page, pk) == (True, True)
    dialogs.accept = False

    enabled_box(page, pk).click()
    page.wait_for_timeout(QUIET_MS)

    assert dialogs.seen == [("confirm", CONFIRM)]
    assert toggles == [], "Cancel must send no request"
    assert flags(pk) == HAS_ACCESS
    assert page_flags(page, pk) == (True, True)
    assert_not_reloaded(page)
    watch.assert_clean(page)


def test_accepting_removes_access_without_a_reload(
    page: Page, org: Org, dialogs: Dialogs, toggles: list[str], watch: Watch
) -> None:
    """(b) OK: both flags unticked in the database and in the swapped row; no page reload."""
    pk = org.handlers[f"{org.tag}-bravo"]
    users_page(page, org)

    assert click_and_swap(page, pk) == 200

    assert dialogs.seen == [("confirm", CONFIRM)]
    assert len(toggles) == 1
    assert flags(pk) == REMOVED
    assert page_flags(page, pk) == (False, False)
    assert "Access removed" in page.locator(f"#user-{pk}").inner_text()
    announcer = page.locator("#announcer")
    assert announcer.count() == 1
    assert f"Access removed for {org.tag}-bravo" in announcer.inner_text()
    # The other rows are untouched.
    assert page_flags(page, org.handlers[f"{org.tag}-alpha"]) == (True, True)
    assert_not_reloaded(page)
    watch.assert_clean(page)


def test_the_three_steps_of_r5_on_a_locked_out_user(
    page: Page, e2e_db: Flask, org: Org, dialogs: Dialogs, watch: Watch
) -> None:
    """(c) Locked out: Enabled unticked, Active ticked; ticking (no question) restores access;
    unticking again asks, and OK removes access."""
    pk = org.handlers[f"{org.tag}-charlie"]
    user = db.session.get(User, pk)
    assert user is not None
    lock_out(user)
    assert flags(pk) == LOCKED_OUT
    users_page(page, org)

    # Step 1: what the Administrator sees.
    assert page_flags(page, pk) == (False, True)
    assert "Locked out" in page.locator(f"#user-{pk}").inner_text()

    # Step 2: tick Enabled: no question, access restored.
    assert click_and_swap(page, pk) == 200
    assert dialogs.seen == []
    assert flags(pk) == HAS_ACCESS
    assert page_flags(page, pk) == (True, True)

    # Step 3: untick it again: the question, OK, both unticked.
    assert click_and_swap(page, pk) == 200
    assert dialogs.seen == [("confirm", CONFIRM)]
    assert flags(pk) == REMOVED
    assert page_flags(page, pk) == (False, False)
    assert_not_reloaded(page)
    watch.assert_clean(page)


def test_rechecking_a_removed_user_restores_active(
    page: Page, e2e_db: Flask, org: Org, dialogs: Dialogs, watch: Watch
) -> None:
    """(d) R6: ticking Enabled of a user whose access was removed ticks Active again."""
    pk = org.handlers[f"{org.tag}-alpha"]
    user = db.session.get(User, pk)
    assert user is not None
    remove_access(user)
    assert flags(pk) == REMOVED
    users_page(page, org)
    assert page_flags(page, pk) == (False, False)

    assert click_and_swap(page, pk) == 200

    assert dialogs.seen == []
    assert flags(pk) == HAS_ACCESS
    assert page_flags(page, pk) == (True, True)
    assert_not_reloaded(page)
    watch.assert_clean(page)


def test_ones_own_row_is_marked_and_cannot_be_unticked(
    page: Page, org: Org, dialogs: Dialogs, toggles: list[str], watch: Watch
) -> None:
    """(e) R4: one's own access cannot be removed.  The own row says "(you)" and its Enabled box
    is a read-only mark with the reason, so nobody is asked "Are you sure…?" only to be refused
    (issue 12 point 5; the server's refusal stays: tests/console/test_users_toggle.py)."""
    pk = org.admin_pk
    users_page(page, org)

    assert page.locator(f"#user-{pk} th").inner_text() == f"{org.admin} (you)"
    assert enabled_box(page, pk).is_disabled()
    assert page.locator(f"#user-{pk}-self").inner_text() == "You cannot remove your own access."
    enabled_box(page, pk).click(force=True)
    page.wait_for_timeout(QUIET_MS)
    assert dialogs.seen == []
    assert toggles == []
    assert flags(pk) == HAS_ACCESS
    assert page_flags(page, pk) == (True, True)
    assert_not_reloaded(page)
    watch.assert_clean(page)


def test_search_filters_as_you_type_and_keeps_the_url_in_step(
    page: Page, org: Org, watch: Watch
) -> None:
    """(f) Typing part of a User ID narrows the rows (HTMX) and pushes ?q=… to the URL."""
    users_page(page, org)
    rows = page.locator("#user-rows tr[id^='user-']")
    assert rows.count() == 5

    with page.expect_response(lambda r: "/console/users?" in r.url and "q=" in r.url):
        page.locator("#q").press_sequentially("-brav", delay=60)
    page.wait_for_url(re.compile(r"[?&]q=-brav(&|$)"))
    page.wait_for_function(
        "() => document.querySelectorAll('#user-rows tr[id^=\"user-\"]').length === 1"
    )

    assert rows.count() == 1
    assert rows.first.locator("th").inner_text() == f"{org.tag}-bravo"
    assert page.locator(".results-count").inner_text() == "1 user"
    assert_not_reloaded(page)
    watch.assert_clean(page)


def test_keyboard_focus_stays_on_the_checkbox(
    page: Page, org: Org, dialogs: Dialogs, watch: Watch
) -> None:
    """A keyboard user who ticks or unticks Enabled with Space keeps their place in the table."""
    pk = org.handlers[f"{org.tag}-charlie"]
    users_page(page, org)
    enabled_box(page, pk).focus()

    with page.expect_response(lambda r: r.url.endswith(f"/users/{pk}/enabled")):
        page.keyboard.press("Space")
    page.wait_for_function("() => !document.querySelector('.htmx-request')")

    assert dialogs.seen == [("confirm", CONFIRM)]
    assert flags(pk) == REMOVED
    watch.assert_clean(page)
    focused = page.evaluate("document.activeElement ? document.activeElement.id : null")
    assert focused == f"enabled-{pk}"


def test_the_watch_sees_a_csp_violation(page: Page, org: Org, watch: Watch) -> None:
    """The CSP listener is live: an inline script added to the page is reported (otherwise
    "no violation" above would prove nothing)."""
    users_page(page, org)
    page.evaluate(
        """() => {
            const s = document.createElement("script");
            s.textContent = "window.__inlineRan = true";
            document.body.appendChild(s);
        }"""
    )
    page.wait_for_function("() => window.__cspViolations.length > 0")

    assert page.evaluate("window.__inlineRan === true") is False
    page.wait_for_function("() => true")  # one more round trip: the binding has reported
    assert any(v.startswith("script-src") for v in watch.csp_violations), watch.csp_violations
    problems = watch.problems(page)
    assert any(p.startswith("CSP violation: script-src") for p in problems), problems
    watch.checked = True  # this test's violation was made on purpose


def test_the_page_declares_an_icon_the_browser_can_get(page: Page, org: Org, watch: Watch) -> None:
    """Browsers ask every site for an icon: without one, Chromium's request for /favicon.ico is a
    404 and a console error on the first page a browser opens."""
    users_page(page, org)
    icon = page.evaluate(
        """() => {
            const link = document.querySelector("link[rel~='icon']");
            return link ? link.href : new URL("/favicon.ico", location.href).href;
        }"""
    )
    if not icon.startswith("data:"):  # an inline icon needs no request
        assert page.request.get(icon).status == 200, f"{icon} is not served"
    watch.assert_clean(page)


def test_without_javascript_the_rows_buttons_remove_after_asking_and_enable(
    browser: Browser, live_server: str, org: Org
) -> None:
    """No JavaScript: each row's button submits the one form around the table (its CSRF token
    and ``next``); removing asks on a page of its own first (issue 12 point 6)."""
    context = browser.new_context(base_url=live_server, java_script_enabled=False)
    try:
        page = context.new_page()
        log_in(page, org.admin)
        page.goto("/console/users?q=" + org.tag)
        user_id, pk = next(iter(org.handlers.items()))
        page.get_by_role("button", name=f"Remove access {user_id}", exact=True).click()
        page.wait_for_url(re.compile(r"/console/users/enabled$"))
        assert page.locator("h1").inner_text() == CONFIRM
        assert flags(pk) == HAS_ACCESS  # asking changed nothing
        page.get_by_role("button", name="OK", exact=True).click()
        page.wait_for_url(re.compile(rf"/console/users\?q={org.tag}$"))
        assert flags(pk) == REMOVED
        page.get_by_role("button", name=f"Enable {user_id}", exact=True).click()
        page.wait_for_url(re.compile(rf"/console/users\?q={org.tag}$"))
        assert flags(pk) == HAS_ACCESS
    finally:
        context.close()

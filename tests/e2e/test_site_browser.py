"""Site pages in real Chromium: the guides search as you type (HTMX) and with the button, the
footer's newsletter form, and the cookie message's button; no CSP violation or console error."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from .conftest import Watch
from .conftest import skip_module_without_browser

if TYPE_CHECKING:
    from playwright.sync_api import Page

skip_module_without_browser()

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_guides_search_as_you_type_and_with_the_button(page: Page) -> None:
    page.goto("/guides/")
    page.evaluate("window.__marker = 'same document'")
    page.get_by_label("Search the guides").fill("LOGIN-03")
    results = page.locator("#guide-results")
    results.get_by_role("link", name=re.compile("LOGIN-03")).wait_for()
    assert page.evaluate("window.__marker") == "same document"  # swapped, not reloaded
    page.wait_for_url(re.compile(r"/guides/\?q=LOGIN-03$"))  # the URL follows (hx-push-url)
    page.get_by_label("Search the guides").fill("expiry date")
    page.get_by_role("button", name="Search").click()
    results.get_by_role("link", name="Managing expiry dates").wait_for()
    results.get_by_role("link", name="Managing expiry dates").click()
    page.wait_for_url(re.compile(r"/guides/managing-expiry-dates$"))
    assert page.title() == "Managing expiry dates – Guides – Claims Portal Console"


def test_the_footer_newsletter_form_and_the_cookie_message(page: Page) -> None:
    page.goto("/guides/troubleshooting")
    page.get_by_role("button", name="Hide cookie message").click()
    page.wait_for_url(re.compile(r"/guides/troubleshooting$"))
    assert page.get_by_role("button", name="Hide cookie message").count() == 0
    footer = page.locator("footer")
    footer.get_by_label("Email address").fill("reader@example.com")
    footer.get_by_role("button", name="Sign up").click()
    page.wait_for_url(re.compile(r"/newsletter/check-your-email$"))
    assert page.get_by_role("heading", level=1).inner_text() == "Check your email"
    page.get_by_role("link", name="Change cookie choices").click()
    page.get_by_label("Yes, show it").check()
    page.get_by_role("button", name="Save cookie choices").click()
    page.get_by_text("Your cookie choice has been saved.").wait_for()
    page.goto("/guides/")
    assert page.get_by_role("button", name="Hide cookie message").count() == 1


def test_skip_link_moves_focus_to_main(page: Page) -> None:
    page.goto("/guides/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    assert skip.evaluate("e => e === document.activeElement")
    assert skip.is_visible()  # shown when focused
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


def test_the_error_summary_takes_focus_and_links_to_the_field(page: Page, watch: Watch) -> None:
    watch.expect_console_error(r"status of 400")  # the refused form is a 400, by design
    page.goto("/newsletter")
    page.locator("main").get_by_role("button", name="Sign up").click()
    page.wait_for_url(re.compile(r"/newsletter$"))
    summary = page.locator(".error-summary")
    summary.wait_for()
    assert summary.evaluate("e => e === document.activeElement")
    summary.get_by_role("link", name="Enter your email address").click()
    assert page.evaluate("document.activeElement.id") == "email"

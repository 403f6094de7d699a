"""Contact Us in real Chromium (issue 4, "Done when"): a person fills the form, sees a
Troubleshooting Guide suggestion appear while typing the error message (HTMX), attaches a
screenshot, sends it and reads the reference; the acknowledgement with that reference is
written to the server's outbox.  And from a refused login, the "contact the Helpdesk" link
brings the message along.  No CSP violation, console error or page error on the way.
"""

from __future__ import annotations

import io
import re
import time
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from PIL import Image
from sqlalchemy import select

from portal.extensions import db
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import parse_reference

from .conftest import Watch
from .conftest import skip_module_without_browser

if TYPE_CHECKING:
    from playwright.sync_api import Page

skip_module_without_browser()

pytestmark = [pytest.mark.browser, pytest.mark.slow]

GUIDE_LINK = "#suggestions a[href='/guides/troubleshooting#LOGIN-06']"


def screenshot_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 200), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def stored(e2e_db: Flask, ref: str) -> HelpdeskRequest:
    db.session.rollback()
    request = db.session.scalars(
        select(HelpdeskRequest).where(HelpdeskRequest.id == parse_reference(ref))
    ).one()
    db.session.rollback()  # no read transaction left open while the server works
    return request


def acknowledgement_for(outbox: Path, ref: str, timeout: float = 10.0) -> str:
    """The body of the outbox message whose subject names ``ref`` (sent after the response)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(outbox.glob("*.eml")):
            message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
            if ref in str(message["Subject"]):
                return str(message.get_content())  # type: ignore[attr-defined]
        time.sleep(0.1)
    raise AssertionError(f"no acknowledgement for {ref} in {outbox}")


def test_a_person_fills_contact_us_sees_a_suggestion_and_reads_the_reference(
    page: Page, watch: Watch, e2e_db: Flask, e2e_outbox: Path
) -> None:
    page.goto("/")
    page.get_by_role("contentinfo").get_by_role("link", name="Contact the Helpdesk").click()
    page.wait_for_url(re.compile(r"/helpdesk/contact$"))
    page.get_by_label("Your full name").fill("Grace Hopper")
    page.get_by_label("Your email address").fill("grace@example.com")
    page.get_by_label("Organisation").fill("Navy Claims Ltd")
    page.get_by_label("Your User ID (optional)").fill("navy.grace")
    page.get_by_role("group", name="Are you an Administrator or a Claims Handler?").get_by_label(
        "Claims Handler"
    ).check()
    page.get_by_role(
        "group", name="Were you logging in to the Admin Console or the Portal?"
    ).get_by_label("Portal", exact=True).check()
    live = page.get_by_role("group", name="Live or Training?").get_by_label("Live")
    assert live.is_checked()  # this deployment's

    message = page.get_by_label("The exact error message")
    assert page.locator(GUIDE_LINK).count() == 0
    message.press_sequentially("Your User ID has reached its exp", delay=25)
    suggestion = page.locator(GUIDE_LINK)
    suggestion.wait_for(state="visible")
    assert "Check this first" in page.locator("#suggestions").inner_text()
    message.press_sequentially("iry date.", delay=25)

    page.get_by_label("Screenshot").set_input_files(
        {"name": "login error.png", "mimeType": "image/png", "buffer": screenshot_png()}
    )
    page.get_by_label("Anything else we should know (optional)").fill("Since Monday.")
    page.get_by_role("button", name="Send to the Helpdesk").click()

    page.wait_for_url(re.compile(r"/helpdesk/contact/sent$"))
    ref = page.locator("#reference").inner_text().strip()
    assert re.fullmatch(r"HD-\d{6}", ref)
    assert page.get_by_role("heading", name="Request sent").is_visible()

    request = stored(e2e_db, ref)
    assert (request.name, request.stated_role, request.console) == (
        "Grace Hopper",
        "claims_handler",
        "portal",
    )
    assert request.error_message == "Your User ID has reached its expiry date."
    assert request.has_screenshot is True
    assert "LOGIN-06" in (request.suggestions_shown or "").split()
    assert ref in acknowledgement_for(e2e_outbox, ref)
    watch.assert_clean(page)


def test_a_refused_login_leads_to_the_form_with_its_message(page: Page, watch: Watch) -> None:
    page.goto("/portal/login")
    page.get_by_label("User ID").fill("nobody.at.all")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="contact the Helpdesk about this message").click()
    page.wait_for_url(re.compile(r"/helpdesk/contact\?"))
    assert page.get_by_label("The exact error message").input_value() == (
        "LOGIN-01: The User ID or password is incorrect."
    )
    assert page.get_by_label("Portal", exact=True).is_checked()
    assert page.locator("#suggestions a[href='/guides/troubleshooting#LOGIN-01']").is_visible()
    # Sent without the role: refused by the server, what was typed kept, the summary links.
    page.get_by_label("Your full name").fill("Nobody")
    page.get_by_label("Your email address").fill("nobody@example.com")
    page.get_by_label("Organisation").fill("Nowhere Ltd")
    watch.expect_console_error(r"status of 422")
    page.get_by_role("button", name="Send to the Helpdesk").click()
    summary = page.locator(".error-summary")
    summary.wait_for(state="visible")
    summary.get_by_role(
        "link", name="Say whether you are an Administrator or a Claims Handler"
    ).click()
    assert page.evaluate("document.activeElement.id") == "role"
    assert page.get_by_label("Your full name").input_value() == "Nobody"
    watch.assert_clean(page)

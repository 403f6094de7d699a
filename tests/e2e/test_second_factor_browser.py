"""The second factor in real Chromium (docs/rules.md R10): a user sets up an authenticator app
(the test plays the app with pyotp, reading the key from ``<code id="totp-secret">``), is shown
ten recovery codes, logs out, and logs in again with the password and a TOTP code.  No CSP
violation anywhere (the QR code is an SVG ``data:`` image), and no page is wider than the
window at 1366 and 390 pixels, with a long name and a long factor name."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

import pyotp
from flask import Flask

from portal.extensions import db
from tests.factories import PASSWORD
from tests.factories import make_user

from .conftest import Watch
from .conftest import skip_module_without_browser

if TYPE_CHECKING:
    from playwright.sync_api import Page

skip_module_without_browser()

NEW_PASSWORD = "a brand new phrase for my account"
WIDTHS = (1366, 390)
LONG_NAME = "Maximiliana Wolfeschlegelsteinhausenbergerdorff-Featherstonehaugh"


def fits(page: Page) -> None:
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        overflow = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        wide = page.evaluate(
            "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right"
            " > window.innerWidth + 1).slice(-6).map(e => e.tagName + '.' + e.className + ' '"
            " + Math.round(e.getBoundingClientRect().right))"
        )
        assert overflow, f"{page.url} is wider than {width} px: {wide}"
    page.set_viewport_size({"width": 1366, "height": 900})


def code_for(secret: str, *, later_steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * later_steps)


def test_totp_enrolment_and_login_end_to_end(e2e_db: Flask, page: Page, watch: Watch) -> None:
    user = make_user(one_time=True, user_id="browser.totp.user", email="totp@example.com")
    user_id = user.user_id
    db.session.rollback()

    # A one-time password login: no email proof is asked before the first factor.
    page.goto("/portal/login")
    page.get_by_label("User ID").fill(user_id)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/account/password$"))
    # the one-time password just used is not asked for again within the same login
    assert page.get_by_label("Current password").count() == 0
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Confirm new password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    page.wait_for_url(re.compile(r"/portal/?$"))

    page.goto("/account/second-factor")
    secret = page.locator("#totp-secret").inner_text().strip()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    qr = page.locator("img.qr-code")
    assert qr.evaluate("img => img.complete && img.naturalWidth > 0")
    fits(page)
    page.get_by_label("Code from the app").fill(code_for(secret))
    page.get_by_label("A name for it").fill("Phone of " + LONG_NAME)
    page.get_by_role("button", name="Add authenticator app").click()
    codes = page.locator(".recovery-code")
    codes.first.wait_for()
    assert codes.count() == 10
    fits(page)
    page.get_by_role("link", name="I have saved my recovery codes").click()
    assert page.locator("#second-factors tbody tr").count() == 1
    assert "Phone of" in page.locator("#second-factors tbody td").first.inner_text()
    fits(page)

    # Log out, and in again: the password, then the code (the next step's: the current one
    # was used to set it up, and a code never works twice).
    page.get_by_role("button", name=re.compile("^Log out")).click()
    page.goto("/portal/login")
    page.get_by_label("User ID").fill(user_id)
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/login/second-factor$"))
    fits(page)
    page.get_by_label("Code").fill(
        "000000" if code_for(secret, later_steps=1) != "000000" else "111111"
    )
    page.get_by_role("button", name="Continue").click()
    assert "code is incorrect." in page.locator("#login-message").inner_text()
    page.get_by_label("Code").fill(code_for(secret, later_steps=1))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r"/portal/?$"))
    assert page.get_by_role("button", name=re.compile("^Log out")).is_visible()
    watch.assert_clean(page)

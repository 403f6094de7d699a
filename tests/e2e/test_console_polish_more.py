"""More of issue 12 point 5 in real Chromium, one assertion a point (the rest are in
test_console_polish.py): the "expired" tag, the site's own 403, staff landing on their work page,
an Administrator's Portal home, LOGIN-02's next step, and the reset "sent" page without a second
form."""

from __future__ import annotations

import itertools
import re
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from flask import Flask

from portal import clock
from portal import messages
from portal.accounts.models import Profile
from portal.db import write_transaction
from portal.extensions import db
from tests.factories import PASSWORD
from tests.factories import lock_out
from tests.factories import make_org
from tests.factories import make_user

from .conftest import Watch
from .conftest import log_in
from .conftest import skip_module_without_browser
from .test_console_polish import CELL

if TYPE_CHECKING:
    from playwright.sync_api import Page

skip_module_without_browser()

pytestmark = [pytest.mark.browser, pytest.mark.slow]

_tags = itertools.count(1)


def _portal_log_in(page: Page, user_id: str) -> None:
    page.goto("/portal/login")
    page.get_by_label("User ID").fill(user_id)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_expired_tag_403_and_the_administrators_portal_home(
    page: Page, e2e_db: Flask, watch: Watch
) -> None:
    tag = f"m{next(_tags)}x"
    org = make_org(f"More polish {tag}")
    admin = make_user(org, user_id=f"{tag}-admin", profile=Profile.ADMINISTRATOR)
    past = make_user(org, user_id=f"{tag}-past")
    with write_transaction(db.session):
        past.expires_on = clock.today() - timedelta(days=3)
    admin_id, past_pk = admin.user_id, past.id
    db.session.rollback()

    log_in(page, admin_id)
    page.goto("/console/users")
    expiry = page.locator(f"#user-{past_pk} {CELL['Expiry date']}")
    assert expiry.locator(".tag-expired").inner_text() == "expired"

    watch.expect_console_error(r"status of 403")
    page.goto("/operator/")
    assert page.locator("h1").inner_text() == messages.ERROR_PAGES[403][0]
    assert page.locator("#way-back").count() == 1

    page.goto("/portal/")
    home = page.locator("main").inner_text()
    assert "Ask one of them to re-enable your User ID" not in home
    watch.assert_clean(page)


@pytest.mark.parametrize(
    ("profile", "lands_on"),
    [(Profile.HELPDESK, r"/helpdesk/requests$"), (Profile.PORTAL_TEAM, r"/operator/$")],
)
def test_staff_land_on_their_work_page(
    page: Page, e2e_db: Flask, watch: Watch, profile: Profile, lands_on: str
) -> None:
    user_id = make_user(
        None, user_id=f"staff-{next(_tags)}-{profile.value}", profile=profile
    ).user_id
    db.session.rollback()
    _portal_log_in(page, user_id)
    page.wait_for_url(re.compile(lands_on))
    watch.assert_clean(page)


def test_a_locked_administrator_reads_the_next_step_and_resets(
    page: Page, e2e_db: Flask, watch: Watch
) -> None:
    tag = f"l{next(_tags)}x"
    org = make_org(f"Locked {tag}")
    make_user(org, user_id=f"{tag}-other", profile=Profile.ADMINISTRATOR)
    locked = lock_out(make_user(org, user_id=f"{tag}-locked", profile=Profile.ADMINISTRATOR))
    user_id = locked.user_id
    db.session.rollback()

    page.goto("/console/login")
    page.get_by_label("User ID").fill(user_id)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    assert messages.get("LOGIN-02").text in page.locator("main").inner_text()

    page.locator("#forgotten").click()
    page.locator("main").get_by_label("Email address").fill("someone@example.com")
    page.locator("main").get_by_role("button", name=re.compile("Send")).click()
    page.wait_for_load_state("networkidle")
    assert page.locator("main form input[name='user_id']").count() == 0
    watch.assert_clean(page)

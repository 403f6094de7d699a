"""The Portal team's area in real Chromium (issue 4 item 6): from a referred helpdesk request to
"Extend and re-enable" an expired Administrator, the reference carried all the way; the search
as you type; and no CSP violation, console error or page error on the way.
"""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from sqlalchemy import select

from portal.accounts.models import Profile
from portal.extensions import db
from portal.helpdesk.models import RequestEvent
from tests.factories import PASSWORD
from tests.factories import make_org
from tests.factories import make_user
from tests.operator.helpers import expired
from tests.operator.helpers import make_request

from .conftest import Flags
from .conftest import Watch
from .conftest import flags
from .conftest import skip_module_without_browser

if TYPE_CHECKING:
    from playwright.sync_api import Page

skip_module_without_browser()

pytestmark = [pytest.mark.browser, pytest.mark.slow]

_tags = itertools.count(1)


def portal_log_in(page: Page, user_id: str) -> None:
    page.goto("/portal/login")
    page.get_by_label("User ID").fill(user_id)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    # staff land on their work page (issue 12 point 5)
    page.wait_for_url(re.compile(r"/(portal/?|operator/|helpdesk/requests)$"))


def test_extend_and_reenable_an_expired_administrator_for_a_request(
    page: Page, e2e_db: Flask, watch: Watch
) -> None:
    tag = f"op{next(_tags)}x"
    org = make_org(f"Operator browser {tag}")
    admin = expired(org, user_id=f"{tag}-admin", profile=Profile.ADMINISTRATOR)
    operator = make_user(None, user_id=f"{tag}-ops", profile=Profile.PORTAL_TEAM)
    request = make_request(user_id=admin.user_id)
    admin_pk, request_id, reference = admin.id, request.id, request.reference
    db.session.rollback()  # no read transaction left open while the server works

    portal_log_in(page, operator.user_id)
    page.get_by_role("link", name="Operator").click()
    page.wait_for_url(re.compile(r"/operator/$"))
    row = page.locator("tr", has_text=reference)
    row.get_by_role("link", name=re.compile("Find the user")).click()

    page.wait_for_url(re.compile(rf"/operator/users\?q={re.escape(admin.user_id)}&ref="))
    assert f"Acting for helpdesk request {reference}" in page.inner_text("#linked-request")
    page.get_by_role("link", name=admin.user_id, exact=True).click()

    page.wait_for_url(re.compile(rf"/operator/users/{admin_pk}\?ref={reference}$"))
    assert "expiry date reached" in page.inner_text("#state")
    assert page.get_by_role("button", name=re.compile("^Re-enable")).count() == 0
    page.get_by_label("New expiry date").fill("2099-01-31")
    page.get_by_role("button", name="Extend and re-enable").click()

    page.wait_for_url(re.compile(rf"/operator/users/{admin_pk}\?ref={reference}$"))
    assert "access restored" in page.inner_text("main")
    assert page.inner_text("#state") == "Has access"
    assert page.inner_text("#expiry-date") == "31 Jan 2099"  # one date format everywhere
    assert flags(admin_pk) == Flags(enabled=True, active=True, reason=None)
    details = db.session.scalars(
        select(RequestEvent.details).where(
            RequestEvent.request_id == request_id, RequestEvent.kind == "account_action"
        )
    ).all()
    db.session.rollback()
    assert len(details) == 1
    assert "2099-01-31" in details[0]
    assert "Re-enabled" in details[0]
    watch.assert_clean(page)


def test_find_a_user_as_you_type(page: Page, e2e_db: Flask, watch: Watch) -> None:
    tag = f"find{next(_tags)}x"
    for name, org in (("north", make_org(f"North {tag}")), ("south", make_org(f"South {tag}"))):
        make_user(org, user_id=f"{tag}-{name}")
    operator = make_user(None, user_id=f"{tag}-ops", profile=Profile.PORTAL_TEAM)
    db.session.rollback()

    portal_log_in(page, operator.user_id)
    page.goto("/operator/users")
    with page.expect_response(lambda r: "/operator/users?" in r.url and "q=" in r.url):
        page.locator("#q").press_sequentially(tag, delay=40)
    page.wait_for_url(re.compile(rf"[?&]q={tag}(&|$)"))
    page.wait_for_function(
        "() => document.querySelectorAll('#operator-results tbody tr').length === 3"
    )
    results = page.inner_text("#operator-results")
    assert f"North {tag}" in results
    assert f"South {tag}" in results
    assert "Operator staff" in results
    watch.assert_clean(page)

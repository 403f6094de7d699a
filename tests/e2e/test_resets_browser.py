"""Second-factor resets in real Chromium: the Console's "Reset second factor…" (asked first)
and the Portal team's two-person flow (one member asks for a helpdesk request, a different one
approves), at 1366 and 390 px wide with 50 requests of long names, and no CSP violation,
console error or page error on the way.
"""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from sqlalchemy import select

from portal import clock
from portal.accounts.models import Profile
from portal.audit.models import AuditEvent
from portal.db import write_transaction
from portal.extensions import db
from portal.second_factor import resets
from portal.second_factor.models import SecondFactorReset
from tests.factories import PASSWORD
from tests.factories import make_org
from tests.factories import make_user
from tests.operator.helpers import make_request

from .conftest import Watch
from .conftest import log_in
from .conftest import skip_module_without_browser

if TYPE_CHECKING:
    from playwright.sync_api import Page

skip_module_without_browser()

pytestmark = [pytest.mark.browser, pytest.mark.slow]

_tags = itertools.count(1)
WIDTHS = (1366, 390)
LONG = "Maximilianna Bartholomew-Featherstonehaugh Wolfeschlegelsteinhausen"


def portal_log_in(page: Page, user_id: str) -> None:
    page.goto("/portal/login")
    page.get_by_label("User ID").fill(user_id)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    # each profile lands on its work page (Portal team users: the operator pages)
    page.wait_for_url(re.compile(r"/(portal|operator)/?$"))


def assert_fits(page: Page) -> None:
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (
            f"wider than {width} px: {page.url}"
        )


def kinds_about(pk: int) -> list[str]:
    found = db.session.scalars(
        select(AuditEvent.kind).where(AuditEvent.subject_id == pk).order_by(AuditEvent.id)
    ).all()
    db.session.rollback()
    return list(found)


def test_an_administrator_resets_a_handlers_factor(page: Page, e2e_db: Flask, watch: Watch) -> None:
    tag = f"cfr{next(_tags)}x"
    org = make_org(f"Reset firm {tag}")
    admin = make_user(org, user_id=f"{tag}-admin", profile=Profile.ADMINISTRATOR)
    handler = make_user(org, user_id=f"{tag}-handler")
    handler_pk = handler.id
    db.session.rollback()

    log_in(page, admin.user_id)
    page.goto(f"/console/users/{handler_pk}")
    assert_fits(page)
    page.get_by_role("link", name="Reset second factor…").click()
    page.wait_for_url(re.compile(rf"/console/users/{handler_pk}/second-factor-reset$"))
    assert_fits(page)
    page.get_by_role("button", name="Reset second factor").click()
    page.wait_for_url(re.compile(rf"/console/users/{handler_pk}$"))
    assert "was reset" in page.inner_text("main")
    assert "second_factor_reset" in kinds_about(handler_pk)
    watch.assert_clean(page)


def test_two_portal_team_members_reset_a_last_administrator(
    browser: object, page: Page, e2e_db: Flask, watch: Watch, live_server: str
) -> None:
    tag = f"tpr{next(_tags)}x"
    org = make_org(f"Last admin firm {tag}")
    admin = make_user(org, user_id=f"{tag}-admin", profile=Profile.ADMINISTRATOR)
    first = make_user(None, user_id=f"{tag}-first", profile=Profile.PORTAL_TEAM)
    second = make_user(None, user_id=f"{tag}-second", profile=Profile.PORTAL_TEAM)
    hd = make_request(user_id=admin.user_id)
    # 50 open requests for users with long names, so the list is seen full.
    for n in range(50):
        other = make_user(make_org(f"{LONG} {tag} {n}"), profile=Profile.ADMINISTRATOR)
        with write_transaction(db.session):
            other.full_name = f"{LONG} {n}"
        with write_transaction(db.session):
            resets.request_reset(first, other, hd, now=clock.now(), today=clock.today())
    admin_pk, reference = admin.id, hd.reference
    db.session.rollback()

    portal_log_in(page, first.user_id)
    page.goto(f"/operator/users/{admin_pk}")
    assert_fits(page)
    page.get_by_label("Helpdesk request reference").fill(reference)
    page.get_by_role("button", name="Ask for a second-factor reset").click()
    page.wait_for_url(re.compile(rf"/operator/users/{admin_pk}\?ref="))
    assert "Another member of the Portal team must approve it" in page.inner_text("main")
    page.goto("/operator/second-factor-resets")
    assert_fits(page)
    row = page.locator(f"#factor-reset-{_request_id(admin_pk)}")
    assert "You asked: another member approves." in row.inner_text()
    assert row.get_by_role("button", name="Approve and reset").count() == 0
    watch.assert_clean(page)

    # The second member, in a browser of their own.
    other_page = page.context.browser.new_context(base_url=live_server).new_page()  # type: ignore[union-attr]
    portal_log_in(other_page, second.user_id)
    other_page.goto("/operator/second-factor-resets")
    other_page.locator(f"#factor-reset-{_request_id(admin_pk)}").get_by_role(
        "button", name="Approve and reset"
    ).click()
    other_page.wait_for_url(re.compile(r"/operator/second-factor-resets$"))
    assert "Approved: the second factor of" in other_page.inner_text("main")
    other_page.context.close()
    assert kinds_about(admin_pk)[-3:] == [
        "second_factor_reset_requested",
        "second_factor_reset_approved",
        "second_factor_reset",
    ]


def _request_id(user_pk: int) -> int:
    found = db.session.scalar(
        select(SecondFactorReset.id).where(SecondFactorReset.user_id == user_pk)
    )
    db.session.rollback()
    assert found is not None
    return found

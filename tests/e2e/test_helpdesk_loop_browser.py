"""The loop closes, in real Chromium (issue 14 "Done when"): a request from Contact Us → the
acknowledgement received by a real SMTP server (aiosmtpd) → its status link opens (and leaves
the URL) → staff reply from the request's page (a guide entry as the starting point, then
"Waiting on requester") → the requester reads the reply and adds information → staff resolve →
the requester is told by email and on the page.  And the Portal team's extend-and-re-enable
for a referred request, resolving it and telling the requester in the same step.

The server is a gunicorn of its own (this module's), so its mail goes to the SMTP server rather
than the shared live server's outbox.  No CSP violation, console error or page error on the way;
the status page has no horizontal scroll at 390 px.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from sqlalchemy import select

from portal import clock
from portal import create_app
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.db import write_transaction
from portal.extensions import db
from portal.helpdesk import status_link
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import parse_reference
from tests.conftest import base_settings
from tests.conftest import migrate
from tests.factories import PASSWORD
from tests.factories import make_org
from tests.factories import make_user
from tests.helpdesk_factories import make_request
from tests.live_server import gunicorn
from tests.mail_server import HOST
from tests.mail_server import SmtpServer
from tests.operator.helpers import expired

from .conftest import CSP_LISTENER
from .conftest import TIMEOUT_MS
from .conftest import Watch
from .conftest import skip_module_without_browser

if TYPE_CHECKING:
    from playwright.sync_api import Browser
    from playwright.sync_api import Page

skip_module_without_browser()

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STATUS_LINK = re.compile(r"https?://[^/\s]+(/helpdesk/status/[A-Za-z0-9_-]+)")
NO_SIDEWAYS_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def loop_smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(HOST, _free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def loop_database(chromium_path: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('loop') / 'loop.sqlite'}"
    migrate(url)
    return url


@pytest.fixture(scope="module")
def loop_server(
    loop_database: str, loop_smtp: SmtpServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    log_path = tmp_path_factory.mktemp("loop-server") / "gunicorn.log"
    env = {"PORTAL_MAIL_SERVER": HOST, "PORTAL_MAIL_PORT": str(loop_smtp.port)}
    with gunicorn(
        loop_database, log_path, workers=1, threads=4, ready_path="/console/login", env=env
    ) as base:
        yield base


@pytest.fixture(scope="module")
def loop_app(loop_database: str) -> Iterator[Flask]:
    application = create_app(base_settings(loop_database))
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture
def loop_db(loop_app: Flask) -> Iterator[Flask]:
    with loop_app.app_context():
        yield loop_app
        db.session.remove()


def open_page(browser: Browser, base: str, watch: Watch, width: int = 1366) -> Page:
    context = browser.new_context(base_url=base, viewport={"width": width, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    context.expose_function("__reportCspViolation", watch.on_csp_violation)
    context.add_init_script(CSP_LISTENER)
    tab = context.new_page()
    tab.on("console", watch.on_console)
    tab.on("pageerror", lambda error: watch.page_errors.append(str(error)))
    return tab


def mail_to(server: SmtpServer, to: str, subject_has: str, timeout: float = 10.0) -> str:
    """The body of the message to ``to`` whose subject contains ``subject_has``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in server.messages:
            if message["To"] == to and subject_has in str(message["Subject"]):
                return str(message.get_content())
        time.sleep(0.1)
    raise AssertionError(f"no message to {to} about {subject_has!r}")


def status_of(pk: int) -> str:
    db.session.rollback()
    status = db.session.scalar(select(HelpdeskRequest.status).where(HelpdeskRequest.id == pk))
    db.session.rollback()
    assert status is not None
    return status


def staff_log_in(page: Page, user_id: str) -> None:
    page.goto("/portal/login")
    page.get_by_label("User ID").fill(user_id)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    # Staff land on their work page (portal/landing.py): the queue, or the operator home.
    page.wait_for_url(re.compile(r"/(helpdesk/requests|operator/)$"))


def fill_contact_us(page: Page, email: str = "grace.loop@example.com") -> str:
    page.goto("/helpdesk/contact")
    page.get_by_label("Your full name").fill("Grace Brewster Murray Hopper-Wellington")
    page.get_by_label("Your email address").fill(email)
    page.get_by_label("Organisation").fill("Navy Claims Ltd")
    page.get_by_label("Your User ID (optional)").fill("navy.grace")
    page.get_by_role("group", name="Are you an Administrator or a Claims Handler?").get_by_label(
        "Claims Handler"
    ).check()
    page.get_by_role(
        "group", name="Were you logging in to the Admin Console or the Portal?"
    ).get_by_label("Portal", exact=True).check()
    page.get_by_label("The exact error message").fill("Your User ID has reached its expiry date.")
    page.get_by_label("Anything else we should know (optional)").fill("Since Monday. " * 20)
    page.get_by_role("button", name="Send to the Helpdesk").click()
    page.wait_for_url(re.compile(r"/helpdesk/contact/sent$"))
    return page.locator("#reference").inner_text().strip()


def test_contact_us_reply_add_information_resolve(
    browser: Browser, loop_server: str, loop_smtp: SmtpServer, loop_db: Flask, watch: Watch
) -> None:
    requester = open_page(browser, loop_server, watch, width=390)
    ref = fill_contact_us(requester)
    pk = parse_reference(ref)
    assert pk is not None

    # The acknowledgement, through real SMTP, carries the status link.
    ack = mail_to(loop_smtp, "grace.loop@example.com", ref)
    found = STATUS_LINK.search(ack)
    assert found is not None
    requester.goto(found.group(1))
    requester.wait_for_url(re.compile(r"/helpdesk/status$"))  # the token left the URL
    assert requester.locator("#reference").inner_text() == ref
    assert requester.locator("#status-label").inner_text().startswith("New")
    assert requester.locator("#no-replies").is_visible()
    assert requester.evaluate(NO_SIDEWAYS_SCROLL)

    # Staff take it (a colleague with a long name is in the "Assigned to" list), then reply.
    staff = make_user(user_id="loop.staff", profile=Profile.HELPDESK)
    colleague = make_user(user_id="loop.colleague.with.a.long.user.id", profile=Profile.HELPDESK)
    with write_transaction(db.session):
        db.session.get(User, colleague.id).full_name = (  # type: ignore[union-attr]
            "Maximiliana Bartholomew-Featherstonehaugh Cholmondeley"
        )
    db.session.rollback()
    desk = open_page(browser, loop_server, watch)
    staff_log_in(desk, staff.user_id)
    desk.goto(f"/helpdesk/requests/{pk}")
    desk.get_by_role("button", name="Take it").click()
    desk.wait_for_url(re.compile(rf"/helpdesk/requests/{pk}$"))
    assert desk.locator("#assignee-now").inner_text() == "Assigned to you."
    assert desk.get_by_role("button", name="Take it").count() == 0
    db.session.rollback()
    assert db.session.get(HelpdeskRequest, pk).assigned_to_id == staff.id  # type: ignore[union-attr]
    db.session.rollback()
    desk.set_viewport_size({"width": 390, "height": 900})
    scroll, inner = desk.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll <= inner, (scroll, inner)
    desk.set_viewport_size({"width": 1366, "height": 900})
    desk.get_by_label("Start from a guide entry").select_option("LOGIN-06")
    box = desk.get_by_role("textbox", name="Reply to the requester")
    # A function, as every other wait here: Playwright evaluates a bare expression with the
    # page's eval, which the strict CSP refuses whenever the first check is not already true.
    desk.wait_for_function(
        "() => document.getElementById('text').value.includes('LOGIN-06')", timeout=TIMEOUT_MS
    )
    box.press("Control+End")
    box.type("\n\nPlease tell us the name of your organisation's Administrator.")
    desk.get_by_label("After sending, the request is").select_option("waiting")
    desk.get_by_role("button", name="Send reply").click()
    desk.wait_for_url(re.compile(rf"/helpdesk/requests/{pk}$"))
    assert "Reply emailed to grace.loop@example.com" in desk.locator("main").inner_text()
    assert desk.evaluate(NO_SIDEWAYS_SCROLL)
    assert status_of(pk) == "waiting"
    reply = mail_to(loop_smtp, "grace.loop@example.com", "a reply")
    assert "name of your organisation's Administrator" in reply
    assert "/helpdesk/status/" in reply
    assert "navy.grace" not in reply  # nothing about an account

    # The requester reads it and adds information.
    requester.reload()
    assert "Waiting on requester" in requester.locator("#status-label").inner_text()
    assert "name of your organisation" in requester.locator("#conversation").inner_text()
    requester.get_by_role("textbox", name="Add information").fill(
        "Our Administrator is Ada Lovelace."
    )
    requester.get_by_role("button", name="Add to my request").click()
    requester.wait_for_url(re.compile(r"/helpdesk/status$"))
    assert "In progress" in requester.locator("#status-label").inner_text()
    assert "Ada Lovelace" in requester.locator("#conversation").inner_text()
    assert requester.evaluate(NO_SIDEWAYS_SCROLL)
    assert status_of(pk) == "in_progress"

    # Staff see it on the timeline, then resolve: the requester is told.
    desk.reload()
    assert "Our Administrator is Ada Lovelace." in desk.locator("#request-timeline").inner_text()
    desk.get_by_role("button", name="Resolve and tell the requester").click()
    desk.wait_for_url(re.compile(rf"/helpdesk/requests/{pk}$"))
    assert status_of(pk) == "resolved"
    told = mail_to(loop_smtp, "grace.loop@example.com", "is resolved")
    assert ref in told
    requester.reload()
    assert requester.locator("#status-label").inner_text().startswith("Resolved")
    assert requester.locator("#resolved-notice").is_visible()
    assert requester.evaluate(NO_SIDEWAYS_SCROLL)
    watch.assert_clean(requester)
    watch.assert_clean(desk)


def test_the_portal_team_extends_re_enables_and_resolves(
    browser: Browser, loop_server: str, loop_smtp: SmtpServer, loop_db: Flask, watch: Watch
) -> None:
    org = make_org("Extend And Resolve Ltd")
    user = expired(org, user_id="ear.admin", profile=Profile.ADMINISTRATOR)
    req = make_request(user_id="ear.admin", status="referred", email="ear.requester@example.com")
    with write_transaction(db.session):
        found = db.session.get(HelpdeskRequest, req.id)
        assert found is not None
        status_link.ensure_salt(found)
    ops = make_user(user_id="ear.ops", profile=Profile.PORTAL_TEAM)
    pk, ref, user_pk = req.id, req.reference, user.id
    db.session.rollback()

    page = open_page(browser, loop_server, watch)
    staff_log_in(page, ops.user_id)
    page.goto("/operator/")
    # Every referred request's reference is a link to its page.
    assert (
        page.get_by_role("link", name=ref, exact=True).get_attribute("href")
        == f"/helpdesk/requests/{pk}"
    )
    page.goto(f"/operator/users/{user_pk}?ref={ref}")
    new_date = (clock.today() + timedelta(days=365)).isoformat()
    page.get_by_label("New expiry date").fill(new_date)
    choice = page.get_by_label(f"and resolve {ref}, telling the requester").last
    assert choice.is_checked()
    page.get_by_role("button", name="Extend and re-enable").click()
    page.wait_for_url(re.compile(rf"/operator/users/{user_pk}"))
    assert "is resolved and the requester has been told" in page.locator("main").inner_text()
    assert status_of(pk) == "resolved"
    told = mail_to(loop_smtp, "ear.requester@example.com", "is resolved")
    assert ref in told
    assert "/helpdesk/status/" in told
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    page.set_viewport_size({"width": 390, "height": 900})
    page.goto(f"/operator/users/{user_pk}?ref={ref}")
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    shots = os.environ.get("HDLOOP_SHOTS")
    if shots:  # for a person to look at (not needed by the test)
        page.screenshot(path=f"{shots}/operator-390.png", full_page=True)
    watch.assert_clean(page)


def test_long_conversations_never_scroll_sideways(
    browser: Browser, loop_server: str, loop_smtp: SmtpServer, loop_db: Flask, watch: Watch
) -> None:
    """50 replies and additions, long names and unbroken words: the status page and the request
    page stay within the screen at 390 and 1366 px.  (The link comes from the server's email:
    only the server's secret key makes it.)"""
    from portal.helpdesk import replies
    from portal.helpdesk.status_page import add_information

    staff = make_user(user_id="long.staff", profile=Profile.HELPDESK)
    db.session.rollback()
    sender = open_page(browser, loop_server, watch)
    ref = fill_contact_us(sender, email="long.conversation@example.com")
    pk = parse_reference(ref)
    assert pk is not None
    found = STATUS_LINK.search(mail_to(loop_smtp, "long.conversation@example.com", ref))
    assert found is not None
    path = found.group(1)
    for n in range(25):
        with write_transaction(db.session):
            replies.reply(
                pk,
                f"Reply {n}: " + "unbrokenwordwithoutanyspaces" * 8 + " and some words." * 20,
                then=None,
                actor=staff,
                now=clock.now(),
            )
        with write_transaction(db.session):
            add_information(pk, f"Addition {n}: " + "y" * 300, now=clock.now())
    db.session.rollback()
    for width in (390, 1366):
        requester = open_page(browser, loop_server, watch, width=width)
        requester.goto(path)
        requester.wait_for_url(re.compile(r"/helpdesk/status$"))
        assert requester.locator("#conversation li").count() == 50
        assert requester.evaluate(NO_SIDEWAYS_SCROLL), width
        desk = open_page(browser, loop_server, watch, width=width)
        staff_log_in(desk, staff.user_id)
        desk.goto(f"/helpdesk/requests/{pk}")
        assert desk.locator("#reply").is_visible()
        assert desk.evaluate(NO_SIDEWAYS_SCROLL), width
        shots = os.environ.get("HDLOOP_SHOTS")
        if shots:  # for a person to look at (not needed by the test)
            requester.screenshot(path=f"{shots}/status-{width}.png", full_page=False)
            desk.locator("#reply").screenshot(path=f"{shots}/reply-{width}.png")
        watch.assert_clean(requester)
        watch.assert_clean(desk)

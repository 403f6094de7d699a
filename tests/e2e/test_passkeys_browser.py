"""Passkeys in real Chromium through its virtual authenticator (CDP ``WebAuthn``): add one on
``/account/second-factor``, then log in with "Use a passkey" on ``/login/second-factor``; no
CSP violation, console error or page error on the way.

WebAuthn refuses an IP address, so this module runs its own gunicorn on the e2e database,
addressed as ``http://localhost:PORT``, with that as its PORTAL_BASE_URL (the relying party id
is then ``localhost``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from portal import clock
from portal import create_app
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.db import write_transaction
from portal.extensions import db
from portal.second_factor import totp
from portal.second_factor.models import SecondFactor
from tests.conftest import base_settings
from tests.factories import PASSWORD
from tests.factories import make_org
from tests.factories import make_user
from tests.live_server import SERVER_ENV
from tests.live_server import gunicorn
from tests.second_factor.helpers import add_totp

from .conftest import CSP_LISTENER
from .conftest import TIMEOUT_MS
from .conftest import Watch
from .conftest import skip_module_without_browser

if TYPE_CHECKING:
    from playwright.sync_api import Browser
    from playwright.sync_api import CDPSession
    from playwright.sync_api import Page

skip_module_without_browser()

pytestmark = [pytest.mark.browser, pytest.mark.slow]

_tags = itertools.count(1)

AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}


@pytest.fixture(scope="module")
def localhost_server(
    e2e_database: str, e2e_outbox: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """gunicorn on the e2e database at http://localhost:PORT (its PORTAL_BASE_URL too)."""
    log_path = tmp_path_factory.mktemp("e2e-passkeys") / "gunicorn.log"
    with gunicorn(
        e2e_database,
        log_path,
        workers=1,
        threads=4,
        ready_path="/console/login",
        env={"PORTAL_MAIL_OUTBOX": str(e2e_outbox), "PORTAL_MFA_REQUIRED": ""},
        public_host="localhost",
    ) as base:
        yield base


@pytest.fixture
def passkey_page(browser: Browser, localhost_server: str, watch: Watch) -> Iterator[Page]:
    """A fresh context on the localhost server, watched for errors like ``page``."""
    context = browser.new_context(base_url=localhost_server)
    context.set_default_timeout(TIMEOUT_MS)
    context.expose_function("__reportCspViolation", watch.on_csp_violation)
    context.add_init_script(CSP_LISTENER)
    tab = context.new_page()
    tab.on("console", watch.on_console)
    tab.on("pageerror", lambda error: watch.page_errors.append(str(error)))
    try:
        yield tab
        if not watch.checked:
            watch.assert_clean(tab)
    finally:
        context.close()


@pytest.fixture
def authenticator(passkey_page: Page) -> tuple[CDPSession, str]:
    """Chromium's virtual platform authenticator (resident keys, user verification)."""
    cdp = passkey_page.context.new_cdp_session(passkey_page)
    cdp.send("WebAuthn.enable")
    added: dict[str, Any] = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})
    return cdp, str(added["authenticatorId"])


def credentials(authenticator: tuple[CDPSession, str]) -> list[dict[str, Any]]:
    cdp, authenticator_id = authenticator
    found: dict[str, Any] = cdp.send(
        "WebAuthn.getCredentials", {"authenticatorId": authenticator_id}
    )
    return list(found["credentials"])


def test_the_server_is_on_localhost(localhost_server: str) -> None:
    assert re.fullmatch(r"http://localhost:\d+", localhost_server)


def totp_for_server(e2e_database: str, user: User) -> str:
    """A TOTP factor for ``user``, its secret sealed under the live server's SECRET_KEY (the
    e2e app's own key differs); returns the secret."""
    app = create_app({**base_settings(e2e_database), "SECRET_KEY": SERVER_ENV["PORTAL_SECRET_KEY"]})
    with app.app_context():
        fresh = db.session.get(User, user.id)
        assert fresh is not None
        secret, _ = add_totp(fresh)
        db.session.remove()
        db.engine.dispose()
    return secret


def assert_fits(page: Page) -> None:
    for width in (1366, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (
            f"wider than {width} px: {page.url}"
        )


def password_then_code(page: Page, user_id: str, code: str | None) -> None:
    page.goto("/console/login")
    page.get_by_label("User ID").fill(user_id)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/login/second-factor$"))
    if code is not None:
        page.get_by_label("Code", exact=True).fill(code)
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url(re.compile(r"/console/?$"))


def test_register_a_passkey_then_log_in_with_it(
    passkey_page: Page,
    authenticator: tuple[CDPSession, str],
    e2e_db: Flask,
    e2e_database: str,
    watch: Watch,
) -> None:
    tag = f"pk{next(_tags)}x"
    org = make_org(f"Passkey firm {tag}")
    make_user(org, user_id=f"{tag}-other", profile=Profile.ADMINISTRATOR)
    admin = make_user(org, user_id=f"{tag}-admin", profile=Profile.ADMINISTRATOR)
    secret = totp_for_server(e2e_database, admin)
    admin_pk, user_id = admin.id, admin.user_id
    db.session.rollback()
    page = passkey_page

    # The password, then a code computed as an authenticator app would.
    password_then_code(page, user_id, totp.code_at(secret, clock.now()))

    # Add a passkey: Chromium's virtual authenticator answers (user verified).
    page.goto("/account/second-factor")
    assert_fits(page)
    page.get_by_label("Name of the passkey").fill("Virtual laptop")
    page.get_by_role("button", name="Add a passkey").click()
    page.wait_for_selector("text=Passkey “Virtual laptop” added")
    made = credentials(authenticator)
    assert len(made) == 1
    assert made[0]["rpId"] == "localhost"
    kinds_now = db.session.scalars(
        select(SecondFactor.kind).where(SecondFactor.user_id == admin_pk)
    ).all()
    db.session.rollback()
    assert sorted(kinds_now) == ["passkey", "totp"]

    # Log out, then in again with the passkey instead of a code.
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/login"))
    password_then_code(page, user_id, None)
    assert_fits(page)
    page.get_by_role("button", name="Use a passkey").click()
    page.wait_for_url(re.compile(r"/console/?$"))
    assert credentials(authenticator)[0]["signCount"] >= 2
    used = db.session.scalar(
        select(SecondFactor.sign_count).where(
            SecondFactor.user_id == admin_pk, SecondFactor.kind == "passkey"
        )
    )
    db.session.rollback()
    assert used is not None
    assert used >= 2
    watch.assert_clean(page)


def test_a_cancelled_prompt_says_so_and_counts_nothing(
    passkey_page: Page,
    authenticator: tuple[CDPSession, str],
    e2e_db: Flask,
    e2e_database: str,
    watch: Watch,
) -> None:
    """The user closes the browser's prompt (here: no passkey on this authenticator):
    PASSKEY-04 is shown from the page itself, nothing reaches the server."""
    tag = f"pkc{next(_tags)}x"
    org = make_org(f"Passkey firm {tag}")
    admin = make_user(org, user_id=f"{tag}-admin", profile=Profile.ADMINISTRATOR)
    totp_for_server(e2e_database, admin)
    with write_transaction(db.session):  # a passkey this browser does not hold
        db.session.add(
            SecondFactor(
                user_id=admin.id,
                kind="passkey",
                name="Elsewhere",
                created_at=clock.now(),
                credential_id=b"elsewhere-credential",
                public_key=b"-",
                sign_count=0,
            )
        )
    admin_pk, user_id = admin.id, admin.user_id
    db.session.rollback()
    page = passkey_page
    password_then_code(page, user_id, None)
    watch.expect_console_error("NotAllowedError|The operation either timed out or was not allowed")
    page.get_by_role("button", name="Use a passkey").click()
    notice = page.locator('[data-passkey-notice="cancelled"]')
    notice.wait_for(state="visible", timeout=60_000)
    assert "PASSKEY-04" in notice.inner_text()
    assert page.url.endswith("/login/second-factor")
    fresh = db.session.get(User, admin_pk)
    assert fresh is not None
    assert fresh.failed_codes == 0
    db.session.rollback()
    watch.assert_clean(page)

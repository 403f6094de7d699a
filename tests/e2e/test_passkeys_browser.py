"""Passkeys in real Chromium through its virtual authenticator (CDP ``WebAuthn``): add one on
``/account/second-factor``, then log in with "Use a passkey" on ``/login/second-factor``; no
CSP violation, console error or page error on the way.

WebAuthn refuses an IP address, so this module runs its own gunicorn on the e2e database,
addressed as ``http://localhost:PORT``, with that as its PORTAL_BASE_URL (the relying party id
is then ``localhost``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import pytest

from tests.live_server import gunicorn

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

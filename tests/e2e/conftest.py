"""Browser tests: real Chromium (Debian's, through Playwright) against a REAL gunicorn server.

* ``live_server``: ``gunicorn -w 1 --threads 4`` on a temporary, migrated SQLite file, with CSRF
  on, as in ``tests/concurrency`` (one per test session).  Its mail goes to ``e2e_outbox`` (``.eml``
  files in a temporary folder).
* ``e2e_db``: an app context on that same file in this process, for the factories and for
  reading the flags back from the database.  Never hold a transaction open while the server
  works (SQLite): the helpers here end theirs at once.
* ``browser`` / ``page``: Chromium from ``/usr/bin/chromium`` (Playwright's own browser download
  is never used).  Every page records console errors, page errors and CSP
  ``securitypolicyviolation`` events; ``Watch.assert_clean`` fails a test on any of them.

Chromium missing, or the ``playwright`` package missing: the tests are skipped with a reason
that ``make test`` prints (``-ra``), except under ``CI=true``, where the run fails.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import pytest
from flask import Flask

from portal import create_app
from portal.accounts.models import User
from portal.extensions import db
from tests.conftest import base_settings
from tests.conftest import migrate
from tests.factories import PASSWORD
from tests.live_server import gunicorn

if TYPE_CHECKING:
    from playwright.sync_api import Browser
    from playwright.sync_api import ConsoleMessage
    from playwright.sync_api import Page

try:
    from playwright.sync_api import sync_playwright
except ImportError as exc:  # pragma: no cover - depends on the machine
    sync_playwright = None
    PLAYWRIGHT_IMPORT_ERROR: str | None = f"{type(exc).__name__}: {exc}"
else:
    PLAYWRIGHT_IMPORT_ERROR = None

DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
]
TIMEOUT_MS = 10_000

#: Runs in every document before its own scripts.  Init scripts are injected through the
#: DevTools protocol, not as inline scripts, so the page's CSP does not block this one.
CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  var entry = e.violatedDirective + " blocked " + (e.blockedURI || "(inline)") +
    " at " + e.sourceFile + ":" + e.lineNumber;
  window.__cspViolations.push(entry);
  if (typeof window.__reportCspViolation === "function") {
    window.__reportCspViolation(entry);
  }
});
"""

SKIP_PREFIX = "browser tests skipped: "


# --- is there a browser? -------------------------------------------------------------------


def find_chromium() -> str | None:
    """``PORTAL_TEST_CHROMIUM`` if set (an empty or missing path means none), else Debian's
    ``/usr/bin/chromium``, else ``chromium`` on the PATH."""
    chosen = os.environ.get("PORTAL_TEST_CHROMIUM")
    if chosen is not None:
        return chosen if chosen and os.access(chosen, os.X_OK) else None
    if os.access(DEFAULT_CHROMIUM, os.X_OK):
        return DEFAULT_CHROMIUM
    return shutil.which("chromium")


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if PLAYWRIGHT_IMPORT_ERROR is not None:
        return (
            f"{SKIP_PREFIX}the playwright package cannot be imported "
            f"({PLAYWRIGHT_IMPORT_ERROR}; `make test` installs the dev extras)"
        )
    if find_chromium() is None:
        return f"{SKIP_PREFIX}Chromium not found (apt-get install chromium)"
    return None


def skip_module_without_browser() -> None:
    """At a test module's top: skip the whole module (one line in the summary) when there is no
    browser, except under CI=true, where ``chromium_path`` fails each test instead."""
    reason = browser_missing()
    if reason is not None and os.environ.get("CI") != "true":
        pytest.skip(reason, allow_module_level=True)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    reason = browser_missing()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {reason.removeprefix(SKIP_PREFIX)}")
        pytest.skip(reason)
    path = find_chromium()
    assert path is not None
    return path


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say it once more, under its own heading, when the browser tests were skipped."""
    reasons = {
        str(report.longrepr[2])
        for report in terminalreporter.stats.get("skipped", [])
        if isinstance(report.longrepr, tuple) and SKIP_PREFIX in str(report.longrepr[2])
    }
    for reason in sorted(reasons):
        terminalreporter.write_sep("=", "browser tests", yellow=True)
        terminalreporter.write_line(
            f"{reason.removeprefix('Skipped: ')} (CI=true makes this a failure)", yellow=True
        )


# --- the live server -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def e2e_database(chromium_path: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated SQLite file (the real migrations), shared by the server and this process."""
    path = tmp_path_factory.mktemp("e2e") / "e2e.sqlite"
    url = f"sqlite:///{path}"
    migrate(url)
    return url


@pytest.fixture(scope="session")
def e2e_outbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the live server writes the mail it sends (``.eml`` files; no SMTP server)."""
    return tmp_path_factory.mktemp("e2e-outbox")


@pytest.fixture(scope="session")
def live_server(
    e2e_database: str, e2e_outbox: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real gunicorn (1 worker × 4 threads, CSRF on) on ``e2e_database``; its base URL."""
    log_path = tmp_path_factory.mktemp("e2e-server") / "gunicorn.log"
    with gunicorn(
        e2e_database,
        log_path,
        workers=1,
        threads=4,
        ready_path="/console/login",
        env={"PORTAL_MAIL_OUTBOX": str(e2e_outbox)},
    ) as base:
        yield base


# --- the database, from this process --------------------------------------------------------


@pytest.fixture(scope="session")
def e2e_app(e2e_database: str) -> Iterator[Flask]:
    application = create_app(base_settings(e2e_database))
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture
def e2e_db(e2e_app: Flask) -> Iterator[Flask]:
    """An app context on the live server's database, for the factories and for reads."""
    with e2e_app.app_context():
        yield e2e_app
        db.session.remove()


@dataclass(frozen=True)
class Flags:
    enabled: bool
    active: bool
    reason: str | None


def flags(pk: int) -> Flags:
    """The user's flags as the database has them now; ends the read transaction at once."""
    db.session.rollback()
    db.session.expire_all()
    user = db.session.get(User, pk)
    assert user is not None
    shot = Flags(user.enabled, user.active, user.disabled_reason)
    db.session.rollback()
    return shot


# --- the browser ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[Browser]:
    assert sync_playwright is not None
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Watch:
    """What went wrong in the page while a test ran."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)
    #: Console errors a test has said it expects (e.g. Chromium's note on a designed 422).
    expected: list[str] = field(default_factory=list)
    checked: bool = False

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            location = message.location
            self.console_errors.append(f"{message.text} ({location.get('url', '')})")

    def on_csp_violation(self, entry: str) -> None:
        self.csp_violations.append(entry)

    def expect_console_error(self, pattern: str) -> None:
        """Allow console errors matching ``pattern`` (a regular expression), and no others."""
        self.expected.append(pattern)

    def problems(self, page: Page | None = None) -> list[str]:
        found = [f"page error: {e}" for e in self.page_errors]
        found += [
            f"console error: {e}"
            for e in self.console_errors
            if not any(re.search(p, e) for p in self.expected)
        ]
        in_page: list[str] = []
        if page is not None and not page.is_closed():
            in_page = page.evaluate("window.__cspViolations || []")
        violations = list(dict.fromkeys([*self.csp_violations, *in_page]))
        found += [f"CSP violation: {v}" for v in violations]
        return found

    def assert_clean(self, page: Page) -> None:
        self.checked = True
        problems = self.problems(page)
        assert not problems, "\n".join(problems)


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def page(browser: Browser, live_server: str, watch: Watch) -> Iterator[Page]:
    """A fresh browser context (no cookies) on the live server, watched for errors."""
    context = browser.new_context(base_url=live_server)
    context.set_default_timeout(TIMEOUT_MS)
    # Reported straight to Python too, so a violation on a page navigated away from is kept.
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


def log_in(page: Page, user_id: str, password: str = PASSWORD) -> None:
    """Through the real /console/login form (CSRF token and all)."""
    page.goto("/console/login")
    page.get_by_label("User ID").fill(user_id)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/console/?$"))

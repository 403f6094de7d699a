"""Every page, as every kind of user, in real Chromium: axe-core finds no violation, and there is
no CSP violation, console error or page error (issue 6, "Done when").

The page list is built from ``app.url_map``:

* every GET route without URL arguments is visited as it is;
* a GET route with arguments needs an entry in :data:`ARGUMENT_ROUTES`, a function that makes
  real values for it (a user's id, a real confirmation token…);
* a GET route that is not a page (a CSV download, an HTMX fragment) is listed in
  :data:`NOT_PAGES` with the reason;
* any other GET route FAILS :func:`test_every_get_route_is_walked`, naming it, so a page added
  later by another branch is never silently left out: give it an entry here.

axe-core is vendored in ``tests/e2e/vendor/`` (see its README) and injected through the DevTools
protocol (an init script), so the page's strict CSP stays on and is itself under test.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from flask import Flask

from portal import clock
from portal import mail_queue
from portal.accounts.models import Profile
from portal.accounts.queries import UserFilters
from portal.console import bulk
from portal.console import user_import
from portal.db import write_transaction
from portal.extensions import db
from portal.guides import pages
from portal.helpdesk.models import RequestKind
from portal.newsletter import service as newsletter
from portal.newsletter.models import Subscriber
from portal.reviews import service as reviews
from tests.factories import PASSWORD
from tests.factories import make_org
from tests.factories import make_user
from tests.helpdesk_factories import make_request
from tests.helpdesk_factories import png_bytes
from tests.live_server import SERVER_ENV
from tests.live_server import gunicorn

from .conftest import CHROMIUM_ARGS  # noqa: F401  (documents where the browser comes from)
from .conftest import CSP_LISTENER
from .conftest import TIMEOUT_MS
from .conftest import Watch
from .conftest import skip_module_without_browser

if TYPE_CHECKING:
    from playwright.sync_api import Browser
    from playwright.sync_api import Page

skip_module_without_browser()

pytestmark = [pytest.mark.browser, pytest.mark.slow]

AXE_PATH = Path(__file__).parent / "vendor" / "axe-core-4.14.1.min.js"
KINDS = ("anonymous", "claims_handler", "administrator", "helpdesk", "portal_team")


@dataclass(frozen=True)
class World:
    """Real values for the routes with arguments, made once on the live server's database."""

    handler_pk: int
    admin_pk: int
    org_pk: int
    request_pks: tuple[int, ...]  # a Contact Us request with a screenshot, a Resend request
    users: dict[str, str]  # kind → User ID
    confirm_token: str
    unsubscribe_token: str
    review_pk: int  # an access review in progress
    bulk_pk: int  # a finished bulk action (its result page)
    import_pk: int  # a CSV import's preview


#: endpoint → the URLs to visit for it, built from real values.
ARGUMENT_ROUTES: dict[str, Callable[[World], list[str]]] = {
    "console.user_page": lambda w: [
        f"/console/users/{w.handler_pk}",
        f"/console/users/{w.admin_pk}",
    ],
    "console.review": lambda w: [f"/console/reviews/{w.review_pk}"],
    "console.review_print": lambda w: [f"/console/reviews/{w.review_pk}/print"],
    "console.bulk_result": lambda w: [f"/console/users/bulk/{w.bulk_pk}"],
    "console.users_import_preview": lambda w: [f"/console/users/import/{w.import_pk}"],
    "console.user_factor_reset_confirm": lambda w: [
        f"/console/users/{w.handler_pk}/second-factor-reset"
    ],
    "console.user_confirm_reset_password": lambda w: [
        f"/console/users/{w.handler_pk}/password-reset"
    ],
    "console.user_confirm_sign_out": lambda w: [f"/console/users/{w.handler_pk}/sign-out"],
    # An unknown token: the "already shown" page (the page with a password is the same layout).
    "console.user_one_time_password": lambda w: [
        f"/console/users/{w.handler_pk}/one-time-password/no-such-token"
    ],
    "guides.page": lambda w: [f"/guides/{p.slug}" for p in pages.all_pages()],
    "helpdesk_queue.request_page": lambda w: [f"/helpdesk/requests/{pk}" for pk in w.request_pks],
    "operator.organisation_page": lambda w: [f"/operator/organisations/{w.org_pk}"],
    "operator.administrator_create": lambda w: [
        f"/operator/organisations/{w.org_pk}/administrators/new"
    ],
    "operator.user_page": lambda w: [
        f"/operator/users/{w.handler_pk}",
        f"/operator/users/{w.admin_pk}",
    ],
    # A real token moves into the session and redirects; the walk sees the "not valid" page.
    "reset.open_link": lambda w: ["/password-reset/no-such-token"],
    "helpdesk_status.open_link": lambda w: ["/helpdesk/status/1-no-such-token"],
    "newsletter.confirm_page": lambda w: [f"/newsletter/confirm/{w.confirm_token}"],
    "newsletter.unsubscribe_page": lambda w: [f"/newsletter/unsubscribe/{w.unsubscribe_token}"],
}

#: GET routes that are not pages, and why.
NOT_PAGES: dict[str, str] = {
    "static": "static files",
    "console.audit_csv": "a CSV download",
    "console.review_csv": "a CSV download",
    "console.users_export": "a CSV download",
    "helpdesk_report.report_csv": "a CSV download",
    "newsletter.subscribers_csv": "a CSV download",
    "console.counts": "an HTMX fragment of the dashboard (checked inside /console/)",
    "helpdesk_queue.screenshot": "an image download (checked inside the request page)",
    "helpdesk_queue.timeline": "an HTMX fragment of the request page (checked inside it)",
    "helpdesk_replies.draft": "an HTMX fragment of the request page (checked inside it)",
    "helpdesk_public.contact_suggestions": "an HTMX fragment of Contact Us (checked in the form)",
    "ops.healthz": "a JSON probe for load balancers",
    "ops.readyz": "a JSON probe for load balancers",
    "ops.metrics_page": "Prometheus text behind a token (404 without one)",
}

NOT_A_PAGE_HINT = "if it is a download or a fragment, list its endpoint in NOT_PAGES"

#: Pages in a state a plain GET does not show: forms sent empty (error summary and messages).
FORM_STATES: list[tuple[str, str]] = [
    ("/portal/login", "Log in"),
    ("/newsletter", "Sign up"),
    ("/password-reset", "Send the link"),
    ("/helpdesk/contact", "Send to the Helpdesk"),
    ("/helpdesk/resend-admin-user-id", "Send the request"),
]


def get_routes(app: Flask) -> list[tuple[str, str, tuple[str, ...]]]:
    """(rule, endpoint, arguments) of every rule that answers GET."""
    return sorted(
        (rule.rule, rule.endpoint, tuple(sorted(rule.arguments)))
        for rule in app.url_map.iter_rules()
        if "GET" in (rule.methods or set())
    )


def unwalked(app: Flask) -> list[str]:
    """GET routes the walk would miss: arguments, and no entry in either table."""
    return [
        f"{rule} (endpoint {endpoint!r}, arguments {', '.join(args)})"
        for rule, endpoint, args in get_routes(app)
        if args and endpoint not in ARGUMENT_ROUTES and endpoint not in NOT_PAGES
    ]


def urls_to_visit(app: Flask, world: World) -> list[str]:
    urls: list[str] = []
    for rule, endpoint, args in get_routes(app):
        if endpoint in NOT_PAGES:
            continue
        if endpoint in ARGUMENT_ROUTES:
            urls += ARGUMENT_ROUTES[endpoint](world)
        elif not args:
            urls.append(rule)
    return list(dict.fromkeys(urls))


def test_every_get_route_is_walked(e2e_app: Flask) -> None:
    missing = unwalked(e2e_app)
    assert not missing, (
        "GET routes with URL arguments that the accessibility walk cannot visit: add each to "
        "ARGUMENT_ROUTES (with a way to make a real value) or to NOT_PAGES (with the reason) "
        "in tests/e2e/test_accessibility.py:\n  " + "\n  ".join(missing)
    )
    stale = sorted(set(ARGUMENT_ROUTES) - {e for _, e, _ in get_routes(e2e_app)})
    assert not stale, f"ARGUMENT_ROUTES names endpoints that no longer exist: {stale}"


@pytest.fixture(scope="module")
def world(e2e_app: Flask) -> World:
    with e2e_app.app_context():
        tag = secrets.token_hex(3)
        org = make_org(f"Accessibility {tag}")
        admin = make_user(org, user_id=f"a11y-admin-{tag}", profile=Profile.ADMINISTRATOR)
        make_user(org, user_id=f"a11y-admin2-{tag}", profile=Profile.ADMINISTRATOR)
        handler = make_user(org, user_id=f"a11y-handler-{tag}")
        helpdesk = make_user(None, user_id=f"a11y-helpdesk-{tag}", profile=Profile.HELPDESK)
        team = make_user(None, user_id=f"a11y-team-{tag}", profile=Profile.PORTAL_TEAM)
        token = secrets.token_urlsafe(32)
        email = f"a11y-{tag}@example.com"
        with write_transaction(db.session):
            db.session.add(
                Subscriber(
                    email=email,
                    email_key=email,
                    status="pending",
                    confirm_token_hash=newsletter.hash_token(token),
                    confirm_expires_at=clock.now() + newsletter.RESEND_AFTER * 100,
                    created_at=clock.now(),
                )
            )
            # The Portal team's mail page with both of its tables filled in.
            for status, attempts in (("failed", 40), ("pending", 2)):
                queued = mail_queue.enqueue(
                    email, "Subject", "Body", purpose="helpdesk.ack", ref="HD-000001"
                )
                queued.status, queued.attempts = status, attempts
                queued.last_attempt_at, queued.last_error = clock.now(), "SMTP refused"
        with write_transaction(db.session):
            review, _ = reviews.start(admin, UserFilters(), now=clock.now(), today=clock.today())
        with write_transaction(db.session):
            operation = bulk.create(
                admin,
                bulk.Request(bulk.EXTEND_EXPIRY, months=3),
                [handler.id, "no-such-user"],
                now=clock.now(),
                background_over=1000,
            )
            preview = user_import.create_preview(
                admin,
                "users.csv",
                b"user_id,full_name,email,profile\r\n"
                + f"new-{tag},New Person,new-{tag}@example.com,claims_handler\r\n".encode()
                + b"bad-row,,not-an-email,claims_handler\r\n",
                now=clock.now(),
                today=clock.today(),
                default_days=365,
            )
        bulk.work(operation.id)
        subscriber = db.session.query(Subscriber).filter_by(email_key=email).one()
        unsubscribe = newsletter.make_unsubscribe_token(
            SERVER_ENV["PORTAL_SECRET_KEY"], subscriber.id, email
        )
        built = World(
            handler_pk=handler.id,
            admin_pk=admin.id,
            org_pk=org.id,
            request_pks=(
                make_request(user_id=handler.user_id, screenshot=png_bytes()).id,
                make_request(kind=RequestKind.RESEND_USER_ID).id,
            ),
            users={
                "claims_handler": handler.user_id,
                "administrator": admin.user_id,
                "helpdesk": helpdesk.user_id,
                "portal_team": team.user_id,
            },
            confirm_token=token,
            unsubscribe_token=unsubscribe,
            review_pk=review.id,
            bulk_pk=operation.id,
            import_pk=preview.id,
        )
        db.session.rollback()
        db.session.remove()
    return built


def _log_in(page: Page, kind: str, world: World) -> None:
    if kind == "anonymous":
        return
    door = "console" if kind == "administrator" else "portal"
    page.goto(f"/{door}/login")
    page.locator("main").get_by_label("User ID").fill(world.users[kind])
    page.locator("main").get_by_label("Password").fill(PASSWORD)
    page.locator("main").get_by_role("button", name="Log in").click()
    # each lands on its work page: the Console, the Portal, the queue, the operator pages
    page.wait_for_url(re.compile(r"/(console/|portal/|helpdesk/requests|operator/)$"))


def _axe(page: Page) -> list[str]:
    """axe-core's violations on the page as it is now, one line per violation and node."""
    result = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    lines = []
    for violation in result:
        for node in violation["nodes"]:
            lines.append(
                f"{violation['id']} ({violation['impact']}): {violation['help']} at "
                f"{', '.join(map(str, node['target']))}"
            )
    return lines


def _check(page: Page, where: str, watch: Watch, problems: list[str]) -> None:
    title = page.title()
    if not title or title.startswith(" –") or title.startswith("–"):
        problems.append(f"{where}: the page has no title of its own ({title!r})")
    problems += [f"{where}: axe {line}" for line in _axe(page)]
    problems += [f"{where}: {p}" for p in watch.problems(page)]
    watch.console_errors.clear()
    watch.page_errors.clear()
    watch.csp_violations.clear()
    page.evaluate("window.__cspViolations = []")


def test_the_harness_sees_violations(browser: Browser, live_server: str) -> None:
    """axe really runs: a page with known faults reports them."""
    context = browser.new_context(base_url=live_server)
    context.add_init_script(path=str(AXE_PATH))
    try:
        page = context.new_page()
        page.goto("/guides/")
        page.evaluate(
            "() => { document.documentElement.removeAttribute('lang');"
            " document.querySelector('main').append(document.createElement('img')); }"
        )
        found = " ".join(_axe(page))
    finally:
        context.close()
    assert "html-has-lang" in found
    assert "image-alt" in found


@pytest.mark.parametrize("kind", KINDS)
def test_every_page_passes_axe(
    browser: Browser, live_server: str, e2e_app: Flask, world: World, kind: str
) -> None:
    from playwright.sync_api import Error as PlaywrightError  # after the module's skip check

    watch = Watch()
    context = browser.new_context(base_url=live_server)
    context.set_default_timeout(TIMEOUT_MS)
    context.expose_function("__reportCspViolation", watch.on_csp_violation)
    context.add_init_script(CSP_LISTENER)
    context.add_init_script(path=str(AXE_PATH))
    page = context.new_page()
    page.on("console", watch.on_console)
    page.on("pageerror", lambda error: watch.page_errors.append(str(error)))
    problems: list[str] = []
    visited: list[str] = []
    try:
        _log_in(page, kind, world)
        for url in urls_to_visit(e2e_app, world):
            try:
                response = page.goto(url)
            except PlaywrightError as exc:  # e.g. "Download is starting" for a CSV
                first_line = str(exc).splitlines()[0]
                problems.append(f"{url}: not a page ({first_line}): {NOT_A_PAGE_HINT}")
                continue
            assert response is not None, url
            if not response.headers.get("content-type", "").startswith("text/html"):
                problems.append(
                    f"{url}: answered {response.headers.get('content-type')}: {NOT_A_PAGE_HINT}"
                )
                continue
            status = response.status
            if status >= 400:
                # Chromium logs every 4xx document as a console error; that one is expected.
                watch.expect_console_error(
                    rf"Failed to load resource: the server responded with a status of {status}"
                )
            if status >= 500:
                problems.append(f"{url}: answered {status}")
            visited.append(f"{url} → {status} {page.url.removeprefix(live_server)}")
            _check(page, f"{url} ({kind})", watch, problems)
        if kind == "anonymous":
            for url, button in FORM_STATES:
                page.goto(url)
                page.locator("main").get_by_role("button", name=button).click()
                page.wait_for_load_state()
                watch.expect_console_error(r"status of 4\d\d")
                _check(page, f"{url} sent empty ({kind})", watch, problems)
    finally:
        context.close()
    assert len(visited) >= 10, visited
    print(f"visited as {kind}:", *visited, sep="\n  ")  # shown with -s
    assert not problems, f"{len(problems)} problem(s) as {kind}:\n" + "\n".join(problems)


@pytest.fixture(scope="module")
def training_server(e2e_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second server on the same database, as a Training deployment."""
    log_path = tmp_path_factory.mktemp("e2e-training") / "gunicorn.log"
    SERVER_ENV["PORTAL_ENVIRONMENT"] = "training"
    try:
        with gunicorn(
            e2e_database, log_path, workers=1, threads=2, ready_path="/portal/login"
        ) as base:
            yield base
    finally:
        SERVER_ENV.pop("PORTAL_ENVIRONMENT", None)


TRAINING_PAGES = ["/portal/login", "/console/login", "/guides/", "/cookies", "/newsletter"]


def test_training_pages_show_the_banner_and_pass_axe(
    browser: Browser, training_server: str
) -> None:
    watch = Watch()
    context = browser.new_context(base_url=training_server)
    context.set_default_timeout(TIMEOUT_MS)
    context.expose_function("__reportCspViolation", watch.on_csp_violation)
    context.add_init_script(CSP_LISTENER)
    context.add_init_script(path=str(AXE_PATH))
    page = context.new_page()
    page.on("console", watch.on_console)
    page.on("pageerror", lambda error: watch.page_errors.append(str(error)))
    problems: list[str] = []
    try:
        for url in TRAINING_PAGES:
            page.goto(url)
            if not page.title().startswith("Training: "):
                problems.append(f"{url}: title {page.title()!r} does not start with Training")
            banner = page.locator(".training-banner")
            if not banner.is_visible() or "Training" not in banner.inner_text():
                problems.append(f"{url}: no visible Training banner")
            _check(page, f"{url} (training)", watch, problems)
    finally:
        context.close()
    assert not problems, "\n".join(problems)

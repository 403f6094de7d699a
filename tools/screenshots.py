"""Screenshots of the main pages for the README: ``make screenshots``.

Builds a temporary SQLite database with the real migrations and demo data (the demo
organisation of ``portal demo-data``, plus users in each state so the list shows them), serves
it with a real gunicorn, and drives Debian's Chromium (``/usr/bin/chromium``, or
``PORTAL_TEST_CHROMIUM``) through Playwright.  Writes ``docs/screenshots/*.png``:

* ``console-users.png``: the Admin Console's users list, as an Administrator;
* ``helpdesk-contact-errors.png``: the Contact Us form sent empty (error summary and messages);
* ``helpdesk-queue.png``: the Helpdesk queue, as Helpdesk staff, after one request was sent;
  ``helpdesk-report.png`` its report, ``helpdesk-request-390.png`` that request on a phone;
* ``second-factor.png``: an Administrator's second-factor page (enrolment).

A page that answers 404 (not built on this branch) is skipped with a message; the others are
still written.  Nothing in ``instance/`` is touched: mail goes to a temporary outbox.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

OUT = REPO / "docs" / "screenshots"
PASSWORD = "demo password for screenshots"
SECRET = "screenshots-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
FAST_ARGON2 = {
    "PORTAL_ARGON2_TIME_COST": "1",
    "PORTAL_ARGON2_MEMORY_COST": "1024",
    "PORTAL_ARGON2_PARALLELISM": "1",
}
VIEWPORT = {"width": 1280, "height": 900}


def say(text: str) -> None:
    print(f"screenshots: {text}", flush=True)


def build_database(url: str) -> None:
    """Migrate, then the demo organisation and a few users in each state (through the rules)."""
    import flask_migrate

    from portal import clock
    from portal import create_app
    from portal.accounts import rules
    from portal.accounts import service
    from portal.accounts.models import Profile
    from portal.cli import DEMO_ORG
    from portal.cli import DEMO_USERS
    from portal.db import write_transaction
    from portal.extensions import db

    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": SECRET,
            "SQLALCHEMY_DATABASE_URI": url,
            **{k: int(v) for k, v in FAST_ARGON2.items()},
        }
    )
    with app.app_context():
        flask_migrate.upgrade()
        now, today = clock.now(), clock.today()
        with write_transaction(db.session):
            org = service.create_organisation(DEMO_ORG, actor=None, now=now)
            extra = [
                (f"demo.handler{n}", name, Profile.CLAIMS_HANDLER, True)
                for n, name in enumerate(
                    ("Farah Khan", "George Obi", "Hana Sato", "Ivan Petrov", "Jo Smith"), start=4
                )
            ]
            created = {}
            for user_id, name, profile, member in (*DEMO_USERS, *extra):
                user, _ = service.create_user(
                    user_id=user_id,
                    full_name=name,
                    email=f"{user_id}@example.com",
                    profile=profile,
                    organisation=org if member else None,
                    expires_on=today + timedelta(days=20 if user_id.endswith("5") else 365)
                    if member
                    else None,
                    actor=None,
                    now=now,
                    password=PASSWORD,
                )
                created[user_id] = user
        with write_transaction(db.session):  # one locked out, one with access removed
            locked = created["demo.handler6"]
            for _ in range(rules.LOCKOUT_AFTER):
                decision = rules.login_attempt(
                    locked.to_state(), password_ok=False, now=now, today=today
                )
                locked.apply(decision.state)
            removed = created["demo.handler7"]
            removed.apply(
                rules.remove_access(
                    removed.to_state(), actor_is_self=False, is_last_admin=False
                ).state
            )
        with write_transaction(db.session):  # mail the Portal team sees at /operator/mail
            add_undelivered_mail(now)
        db.session.remove()
        db.engine.dispose()


def add_undelivered_mail(now) -> None:  # type: ignore[no-untyped-def]
    """50 messages that could not be delivered (long addresses and errors), for /operator/mail."""
    from portal import mail_queue

    for n in range(50):
        row = mail_queue.enqueue(
            f"maximilian.alexander-featherstonehaugh.{n}@claims-department.example-insurer.co.uk",
            f"Your Helpdesk request HD-{n + 1:06d}",
            "Thank you for contacting the Helpdesk.",
            purpose="helpdesk.ack",
            ref=f"HD-{n + 1:06d}",
        )
        row.attempts = 53 if n % 2 else 4
        row.status = mail_queue.FAILED if n % 2 else mail_queue.PENDING
        row.last_attempt_at = now
        row.last_error = (
            "SMTPRecipientsRefused: 550 5.1.1 mailbox unavailable: the recipient's "
            "mail server refused the address and said it does not exist"
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(url: str, outbox: Path) -> Iterator[str]:
    import requests

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update(
        {
            "DATABASE_URL": url,
            "PORTAL_SECRET_KEY": SECRET,
            "PORTAL_ENV": "development",
            "PORTAL_RATELIMIT_ENABLED": "false",
            "PORTAL_SCHEDULER": "off",
            "PORTAL_MAIL_OUTBOX": str(outbox),
            **FAST_ARGON2,
        }
    )
    gunicorn = Path(sys.executable).parent / "gunicorn"
    proc = subprocess.Popen(
        [str(gunicorn), "-w", "1", "--threads", "4", "-b", f"127.0.0.1:{port}", "app:app"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(requests.RequestException):
                if requests.get(base + "/portal/login", timeout=2).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("screenshots: the server did not start")
            time.sleep(0.2)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)


def chromium() -> str:
    chosen = os.environ.get("PORTAL_TEST_CHROMIUM") or "/usr/bin/chromium"
    if not os.access(chosen, os.X_OK):
        found = shutil.which("chromium")
        if not found:
            raise SystemExit("screenshots: Chromium not found (apt-get install chromium)")
        chosen = found
    return chosen


def log_in(page, door: str, user_id: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"/{door}/login")
    page.locator("main").get_by_label("User ID").fill(user_id)
    page.locator("main").get_by_label("Password").fill(PASSWORD)
    page.locator("main").get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def hide_cookie_message(page) -> None:  # type: ignore[no-untyped-def]
    button = page.get_by_role("button", name="Hide cookie message")
    if button.count():
        button.click()
        page.wait_for_load_state()


def shoot(page, url: str, name: str) -> bool:  # type: ignore[no-untyped-def]
    """Screenshot ``url`` (full page) as ``name``; False (and a message) when it answers 404."""
    response = page.goto(url)
    if response is not None and response.status == 404:
        say(f"skipped {name}: {url} answers 404 (not built on this branch)")
        return False
    page.screenshot(path=str(OUT / name), full_page=True)
    say(f"wrote docs/screenshots/{name}")
    return True


CONTACT_VALUES = {
    "role": "administrator",
    "console": "admin_console",
    "environment": "live",
    "full_name": "Alex Admin",
    "email": "alex@example.com",
    "organisation": "Demo Claims Ltd",
    "user_id": "demo.admin1",
    "error_message": "Your User ID has reached its expiry date. (LOGIN-06)",
    "details": "Our only other Administrator is on leave; please help me get back in.",
}


def send_one_request(page) -> None:  # type: ignore[no-untyped-def]
    """Fill the contact form field by field (radios, selects, text) and send it."""
    form = page.locator("form:has([name=error_message])")
    for name, value in CONTACT_VALUES.items():
        field = form.locator(f"[name={name}]")
        if not field.count():
            continue
        first = field.first
        kind = (first.get_attribute("type") or first.evaluate("e => e.tagName")).lower()
        if kind == "radio":
            form.locator(f"[name={name}][value={value}]").check()
        elif kind == "select":
            first.select_option(value)
        else:
            first.fill(value)
    form.locator("button[type=submit]").last.click()
    page.wait_for_load_state()


def main() -> int:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="portal-screenshots-") as tmp:
        url = f"sqlite:///{tmp}/screenshots.sqlite"
        build_database(url)
        with serve(url, Path(tmp) / "outbox") as base, sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=chromium(), args=["--no-sandbox", "--disable-gpu"]
            )
            try:
                admin = browser.new_context(base_url=base, viewport=VIEWPORT)
                page = admin.new_page()
                log_in(page, "console", "demo.admin1")
                hide_cookie_message(page)
                shoot(page, "/console/users", "console-users.png")
                shoot(page, "/account/second-factor", "second-factor.png")
                admin.close()

                public = browser.new_context(base_url=base, viewport=VIEWPORT)
                page = public.new_page()
                response = page.goto("/helpdesk/contact")
                if response is not None and response.status != 404:
                    hide_cookie_message(page)
                    page.locator("form:has([name=error_message]) button[type=submit]").last.click()
                    page.wait_for_load_state()
                    page.screenshot(path=str(OUT / "helpdesk-contact-errors.png"), full_page=True)
                    say("wrote docs/screenshots/helpdesk-contact-errors.png")
                    page.goto("/helpdesk/contact")
                    try:
                        send_one_request(page)
                    except Exception as exc:  # the queue shot is still worth taking
                        say(f"could not send a request for the queue ({exc}); it will be empty")
                else:
                    say("skipped helpdesk-contact-errors.png: /helpdesk/contact answers 404")
                public.close()

                for width, suffix in ((1366, ""), (390, "-390")):
                    team = browser.new_context(
                        base_url=base, viewport={"width": width, "height": 900}
                    )
                    page = team.new_page()
                    log_in(page, "portal", "demo.portalteam")
                    hide_cookie_message(page)
                    shoot(page, "/operator/mail", f"operator-mail{suffix}.png")
                    page.goto("/operator/users?q=demo.handler6")
                    page.locator("a[href*='/operator/users/']").first.click()
                    page.wait_for_load_state()
                    page.screenshot(
                        path=str(OUT / f"operator-user-locked{suffix}.png"), full_page=True
                    )
                    say(f"wrote docs/screenshots/operator-user-locked{suffix}.png")
                    team.close()

                staff = browser.new_context(base_url=base, viewport=VIEWPORT)
                page = staff.new_page()
                log_in(page, "portal", "demo.helpdesk")
                hide_cookie_message(page)
                shoot(page, "/helpdesk/requests", "helpdesk-queue.png")
                shoot(page, "/helpdesk/report", "helpdesk-report.png")
                staff.close()
                phone = browser.new_context(base_url=base, viewport={"width": 390, "height": 900})
                page = phone.new_page()
                log_in(page, "portal", "demo.helpdesk")
                hide_cookie_message(page)
                shoot(page, "/helpdesk/requests/1", "helpdesk-request-390.png")
                phone.close()
            finally:
                browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A real gunicorn with 2 workers (and a real scheduler process), on SQLite and PostgreSQL:
/metrics adds up every worker's counts; every line the processes write is one JSON object
with the request id; and no line of the login, reset and newsletter flows holds a password
or a token."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from portal.accounts.models import Profile
from portal.extensions import db
from tests.factories import PASSWORD
from tests.factories import make_user
from tests.helpers import csrf_token_in
from tests.live_server import REPO
from tests.live_server import _server_env
from tests.live_server import gunicorn

pytestmark = pytest.mark.slow

TOKEN = "live-metrics-token-0123456789"
JSON_LOGS = {"PORTAL_LOG_FORMAT": "json", "PORTAL_METRICS_TOKEN": TOKEN}
WRONG_PASSWORD = "Wrong-Password-Never-Logged-42"
NEW_PASSWORD = "A brand new passphrase, never logged 7"
RESET_LINK = re.compile(r"https?://[^/\s]+(/password-reset/[A-Za-z0-9_\-]+)")
CONFIRM_LINK = re.compile(r"https?://[^/\s]+(/newsletter/confirm/(\S+))")
UNSUBSCRIBE_LINK = re.compile(r"https?://[^/\s]+(/newsletter/unsubscribe/(\S+))")


def wait_until(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return found


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line as JSON (fails on the first line that is not one object)."""
    entries = []
    for line in text.splitlines():
        if line.strip():
            try:
                entry = json.loads(line)
            except ValueError:
                raise AssertionError(f"not a JSON line: {line!r}") from None
            assert isinstance(entry, dict), line
            entries.append(entry)
    return entries


def access_lines(log_path: Path) -> list[dict[str, Any]]:
    return [e for e in json_lines(log_path.read_text()) if e["logger"] == "gunicorn.access"]


def scrape(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = requests.get(
        base + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


READY_200 = (
    "portal_http_requests_total",
    (("endpoint", "ops.readyz"), ("method", "GET"), ("status", "200")),
)


def test_metrics_add_up_every_workers_counts(database_url: str, tmp_path: Path) -> None:
    log_path = tmp_path / "gunicorn.log"
    with gunicorn(
        database_url, log_path, workers=2, threads=2, ready_path="/healthz", env=JSON_LOGS
    ) as base:
        sent: list[requests.Response] = []

        def probe(_: int) -> requests.Response:
            return requests.get(base + "/readyz", timeout=30)

        def both_workers_served() -> bool:
            with ThreadPoolExecutor(8) as pool:
                sent.extend(pool.map(probe, range(16)))
            pids = {e["pid"] for e in access_lines(log_path) if e.get("route") == "ops.readyz"}
            return len(pids) >= 2

        wait_until(both_workers_served, "both workers to answer", timeout=60)
        assert {r.status_code for r in sent} == {200}
        for _ in range(4):  # whichever worker answers the scrape, the total is the same
            assert scrape(base)[READY_200] == len(sent)
        ids = {r.headers["X-Request-ID"] for r in sent}
        assert len(ids) == len(sent)
    logged = {e["request_id"] for e in access_lines(log_path) if e.get("route") == "ops.readyz"}
    assert ids <= logged  # each response's id is on its access line


def _outbox_mail(outbox: Path, pattern: re.Pattern[str], seen: set[Path]) -> re.Match[str]:
    def find() -> re.Match[str] | None:
        for path in sorted(outbox.glob("*.eml")) if outbox.exists() else []:
            if path in seen:
                continue
            found = pattern.search(path.read_text())
            if found:
                seen.add(path)
                return found
        return None

    return wait_until(find, f"an email matching {pattern.pattern}")  # type: ignore[no-any-return]


def _post(
    session: requests.Session, base: str, page: str, url: str, data: dict[str, str]
) -> requests.Response:
    token = csrf_token_in(session.get(base + page, timeout=30).text)
    return session.post(
        base + url, data={"csrf_token": token, **data}, timeout=30, allow_redirects=False
    )


def test_no_log_line_of_the_login_reset_and_newsletter_flows_holds_a_secret(
    app: Flask, database_url: str, tmp_path: Path
) -> None:
    admin = make_user(profile=Profile.ADMINISTRATOR, email="ada.admin@example.com")
    db.session.rollback()
    log_path = tmp_path / "gunicorn.log"
    outbox = tmp_path / "outbox"
    seen: set[Path] = set()
    secrets: set[str] = {PASSWORD, WRONG_PASSWORD, NEW_PASSWORD}
    with gunicorn(
        database_url, log_path, workers=2, threads=2, ready_path="/healthz", env=JSON_LOGS
    ) as base:
        # Login: a wrong password, then the right one, then logout.
        browser = requests.Session()
        refused = _post(
            browser,
            base,
            "/portal/login",
            "/portal/login",
            {"user_id": admin.user_id, "password": WRONG_PASSWORD},
        )
        assert refused.status_code == 200
        done = _post(
            browser,
            base,
            "/portal/login",
            "/portal/login",
            {"user_id": admin.user_id, "password": PASSWORD},
        )
        assert done.status_code == 302
        secrets.update(browser.cookies.values())
        assert _post(browser, base, "/", "/logout", {}).status_code in (302, 303)

        # Password reset: ask, open the emailed link, choose a new password, log in with it.
        browser = requests.Session()
        asked = _post(
            browser,
            base,
            "/password-reset",
            "/password-reset",
            {"user_id": admin.user_id, "email": "ada.admin@example.com"},
        )
        assert asked.status_code == 200
        link = _outbox_mail(outbox, RESET_LINK, seen)
        secrets.add(link.group(1).rsplit("/", 1)[1])
        opened = browser.get(base + link.group(1), timeout=30, allow_redirects=False)
        assert opened.status_code == 302
        chosen = _post(
            browser,
            base,
            "/password-reset/new",
            "/password-reset/new",
            {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        )
        assert chosen.status_code in (200, 302), chosen.text
        again = _post(
            browser,
            base,
            "/portal/login",
            "/portal/login",
            {"user_id": admin.user_id, "password": NEW_PASSWORD},
        )
        assert again.status_code == 302
        secrets.update(browser.cookies.values())

        # Newsletter: sign up, confirm, unsubscribe.
        reader = requests.Session()
        signed = _post(reader, base, "/", "/newsletter", {"email": "reader@example.com"})
        assert signed.status_code == 302
        confirm = _outbox_mail(outbox, CONFIRM_LINK, seen)
        secrets.add(confirm.group(2))
        assert reader.get(base + confirm.group(1), timeout=30).status_code == 200
        confirmed = _post(
            reader, base, confirm.group(1), "/newsletter/confirm", {"token": confirm.group(2)}
        )
        assert confirmed.status_code == 200
        leave = _outbox_mail(outbox, UNSUBSCRIBE_LINK, seen)
        secrets.add(leave.group(2))
        assert reader.get(base + leave.group(1), timeout=30).status_code == 200
        gone = _post(
            reader, base, leave.group(1), "/newsletter/unsubscribe", {"token": leave.group(2)}
        )
        assert gone.status_code == 200
        secrets.update(reader.cookies.values())

    text = log_path.read_text()
    entries = json_lines(text)  # every line of both workers and the master is JSON
    for secret in secrets:
        if secret in text:  # never print the secret itself
            pytest.fail(f"a secret ({len(secret)} characters) is in the log")
    paths = [e.get("path", "") for e in entries if e["logger"] == "gunicorn.access"]
    assert "/password-reset/[token]" in paths
    assert "/newsletter/confirm/[token]" in paths
    assert "/newsletter/unsubscribe/[token]" in paths
    for entry in entries:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])
        assert {"level", "logger", "message"} <= entry.keys()
    logins = [
        e for e in entries if e.get("route") == "auth.portal_login" and e.get("method") == "POST"
    ]
    assert len(logins) == 3
    assert all(e["request_id"] and "duration_ms" in e and "status" in e for e in logins)
    assert sum(1 for e in logins if e.get("user") == admin.id) == 2  # logged in: its internal id


def test_the_scheduler_writes_json_lines(database_url: str, tmp_path: Path) -> None:
    """``portal scheduler`` in production format: its start, its catch-up run and its stop."""
    flask = Path(sys.executable).parent / "flask"
    env = _server_env(database_url, {"PORTAL_LOG_FORMAT": "json"})
    log_path = tmp_path / "scheduler.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(flask), "--app", "app", "portal", "scheduler"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: " finished: ok" in log_path.read_text(), "the catch-up run", 60)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    entries = json_lines(log_path.read_text())
    messages = [e["message"] for e in entries]
    assert any(m.startswith("Scheduler running") for m in messages)
    assert any(m.startswith("nightly run for") and "finished: ok" in m for m in messages)
    assert "Scheduler stopped." in messages
    assert {e["logger"] for e in entries} >= {"portal.jobs.runner", "portal.jobs.commands"}

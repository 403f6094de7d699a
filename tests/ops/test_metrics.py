"""/metrics (docs/rules.md §9): behind PORTAL_METRICS_TOKEN; requests, logins, lockouts, the mail
and Helpdesk queues, each job's last success and the version, on SQLite and PostgreSQL.  Counters
are per process here, so each test compares before and after."""

from __future__ import annotations

import json
import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from importlib import metadata
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from portal import clock
from portal import mail_queue
from portal.db import write_transaction
from portal.extensions import db
from portal.jobs.runs import FAILED
from portal.jobs.runs import OK
from portal.jobs.runs import JobRun
from tests.factories import PASSWORD
from tests.factories import login
from tests.factories import make_user
from tests.factories import remove_access
from tests.helpdesk_factories import make_request

TOKEN = "metrics-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
with_token = pytest.mark.config(PORTAL_METRICS_TOKEN=TOKEN)


def scrape(client: FlaskClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of one scrape, by (name, sorted labels), as a cookie-less scraper sees it."""
    answer = client.application.test_client().get("/metrics", headers=AUTH)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain")
    assert "Set-Cookie" not in answer.headers
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_no_token_set_means_no_route(client: FlaskClient) -> None:
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers=AUTH).status_code == 404


@with_token
@pytest.mark.parametrize(
    ("header", "status"),
    [
        (None, 401),
        ("Basic dXNlcjpwYXNz", 401),
        ("Bearer", 401),
        ("Bearer wrong-token", 403),
        (f"Bearer {TOKEN}x", 403),
        (f"bearer {TOKEN}", 200),
    ],
)
def test_only_the_right_bearer_token_reads_the_metrics(
    client: FlaskClient, header: str | None, status: int
) -> None:
    answer = client.get("/metrics", headers={"Authorization": header} if header else {})
    assert answer.status_code == status
    if status != 200:
        assert "portal_" not in answer.text


@with_token
def test_build_info_carries_the_installed_version(client: FlaskClient) -> None:
    installed = metadata.version("claims-portal-console")
    assert value(scrape(client), "portal_build_info", version=installed) == 1
    assert value(scrape(client), "portal_database_figures_up") == 1


@with_token
def test_requests_by_endpoint_and_status_with_latency(client: FlaskClient) -> None:
    before = scrape(client)
    for _ in range(3):
        client.get("/healthz")
    client.get("/no/such/page")
    after = scrape(client)
    ok = {"endpoint": "ops.healthz", "method": "GET", "status": "200"}
    missing = {"endpoint": "unmatched", "method": "GET", "status": "404"}
    name = "portal_http_requests_total"
    assert value(after, name, **ok) - value(before, name, **ok) == 3
    assert value(after, name, **missing) - value(before, name, **missing) == 1
    histogram = "portal_http_request_duration_seconds_count"
    assert (
        value(after, histogram, endpoint="ops.healthz")
        - value(before, histogram, endpoint="ops.healthz")
        == 3
    )


@with_token
def test_logins_by_outcome_and_lockouts(client: FlaskClient) -> None:
    user, removed = make_user(), make_user()
    remove_access(removed)
    before = scrape(client)
    assert login(client, user.user_id).status_code == 302
    client.post("/logout")
    for _ in range(5):
        login(client, user.user_id, "not the password at all")
    login(client, removed.user_id, PASSWORD)  # the right password, access removed (R4)
    login(client, "nobody-has-this-id", PASSWORD)
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("portal_logins_total", outcome="ok") == 1
    assert delta("portal_logins_total", outcome="bad_password") == 6
    assert delta("portal_logins_total", outcome="refused_removed") == 1
    assert delta("portal_lockouts_total") == 1


@with_token
def test_mail_queue_depth_and_oldest_age(client: FlaskClient) -> None:
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with clock.frozen(start):
        with write_transaction(db.session):
            mail_queue.enqueue("a@example.com", "First", "text", purpose="test")
        clock.advance(timedelta(minutes=10))
        with write_transaction(db.session):
            mail_queue.enqueue("b@example.com", "Second", "text", purpose="test")
            sent = mail_queue.enqueue("c@example.com", "Third", "text", purpose="test")
            sent.status = mail_queue.SENT
        clock.advance(timedelta(minutes=35))
        samples = scrape(client)
    assert value(samples, "portal_mail_queue_messages", status="pending") == 2
    assert value(samples, "portal_mail_queue_messages", status="sent") == 1
    assert value(samples, "portal_mail_queue_messages", status="failed") == 0
    assert value(samples, "portal_mail_queue_oldest_pending_age_seconds") == 45 * 60


@with_token
def test_an_empty_mail_queue_has_no_age(client: FlaskClient) -> None:
    assert value(scrape(client), "portal_mail_queue_oldest_pending_age_seconds") == 0


@with_token
def test_helpdesk_requests_by_status(client: FlaskClient) -> None:
    for status in ("new", "new", "in_progress", "resolved"):
        make_request(status=status)
    samples = scrape(client)
    assert value(samples, "portal_helpdesk_requests", status="new") == 2
    assert value(samples, "portal_helpdesk_requests", status="in_progress") == 1
    assert value(samples, "portal_helpdesk_requests", status="referred") == 0
    assert value(samples, "portal_helpdesk_requests", status="resolved") == 1


@with_token
def test_each_jobs_last_success_duration_and_counts(client: FlaskClient) -> None:
    """The scheduler process records its runs in the database; any web worker reports them."""
    first = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    counts = {"sweep": {"inactivity": 3, "expiry": 1}, "mail": {"sent": 2}}
    with write_transaction(db.session):
        db.session.add_all(
            [
                JobRun(
                    job="nightly",
                    night=first.date(),
                    started_at=first,
                    finished_at=first + timedelta(seconds=42),
                    status=OK,
                    runner="test:1",
                    counts=json.dumps(counts),
                ),
                JobRun(  # a later night that failed: not a success
                    job="nightly",
                    night=first.date() + timedelta(days=1),
                    started_at=first + timedelta(days=1),
                    finished_at=first + timedelta(days=1, seconds=5),
                    status=FAILED,
                    runner="test:1",
                    counts="{}",
                ),
            ]
        )
    samples = scrape(client)
    finished = (first + timedelta(seconds=42)).timestamp()
    assert value(samples, "portal_job_last_success_timestamp_seconds", job="nightly") == finished
    assert value(samples, "portal_job_last_duration_seconds", job="nightly") == 42
    count = "portal_job_last_count"
    assert value(samples, count, job="nightly", step="sweep", item="inactivity") == 3
    assert value(samples, count, job="nightly", step="mail", item="sent") == 2


@with_token
def test_the_example_alert_rules_name_metrics_that_exist(client: FlaskClient) -> None:
    """deploy/prometheus/portal-alerts.yml only uses series /metrics exports."""
    rules = (Path(__file__).parents[2] / "deploy" / "prometheus" / "portal-alerts.yml").read_text()
    names = set(re.findall(r"\b(portal_[a-z_]+)", rules))
    page = client.application.test_client().get("/metrics", headers=AUTH).text
    exported = set(re.findall(r"^# TYPE (\S+) ", page, re.MULTILINE))
    exported |= {f"{name}_total" for name in exported}  # a counter's series end in _total
    assert names
    assert names <= exported, names - exported
    for alert in ("PortalNotReady", "PortalMailQueueStuck", "PortalNightlyJobLate"):
        assert f"alert: {alert}" in rules
    assert "> 30 * 60" in rules
    assert "> 26 * 3600" in rules

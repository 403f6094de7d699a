"""Prometheus instruments counted by this process, and the request hooks that feed them.

Under gunicorn every worker counts into files in ``PROMETHEUS_MULTIPROC_DIR`` (set by
deploy/gunicorn.conf.py before the workers import this module) and ``/metrics`` adds them up,
so any worker answers with the figures of all.  Without that variable (``flask run``, tests)
the counts are this process's own.  Figures kept in the database (the mail queue, the
Helpdesk queue, the nightly runs written by the scheduler process) are read at scrape time by
:mod:`portal.ops.figures`.
"""

from __future__ import annotations

import os
import time

from flask import Flask
from flask import g
from flask import request
from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Histogram
from prometheus_client import disable_created_metrics
from prometheus_client import multiprocess
from prometheus_client.registry import REGISTRY
from werkzeug.wrappers import Response

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

disable_created_metrics()  # no ``*_created`` series: they double the output and say little

REQUESTS = Counter(
    "portal_http_requests_total",
    "HTTP requests answered, by Flask endpoint, method and status.",
    ["endpoint", "method", "status"],
)
LATENCY = Histogram(
    "portal_http_request_duration_seconds",
    "Time from the start of the request to its response, by Flask endpoint.",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
LOGINS = Counter(
    "portal_logins_total",
    "Login attempts by outcome (ok, bad_password, refused_*).",
    ["outcome"],
)
LOCKOUTS = Counter("portal_lockouts_total", "Accounts locked by R1 (wrong passwords).")

#: Endpoint label for requests that matched no route (bounded: never the raw path).
UNMATCHED = "unmatched"


def count_login(outcome: object) -> None:
    """One login attempt with this outcome (a ``rules.Outcome`` or a string)."""
    LOGINS.labels(outcome=str(getattr(outcome, "value", outcome))).inc()


def registry() -> CollectorRegistry:
    """What ``/metrics`` reads: every worker's files, or this process's own registry."""
    if os.environ.get(MULTIPROCESS_ENV):
        collected = CollectorRegistry()
        multiprocess.MultiProcessCollector(collected)
        return collected
    return REGISTRY


def _start() -> None:
    g.metrics_started = time.perf_counter()


def _observe(response: Response) -> Response:
    started = g.get("metrics_started")
    endpoint = request.endpoint or UNMATCHED
    REQUESTS.labels(
        endpoint=endpoint, method=request.method, status=str(response.status_code)
    ).inc()
    if started is not None:
        LATENCY.labels(endpoint=endpoint).observe(time.perf_counter() - started)
    return response


def init_app(app: Flask) -> None:
    app.before_request(_start)
    app.after_request(_observe)

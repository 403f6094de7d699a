"""Work done after the response: a small thread pool per app (per worker process).

Used where the time a request takes must not depend on what it finds (docs/security.md EN-03: the
password reset request), and for email after a committed action.  Each job runs in a request
context of its own that carries only the client's address and user agent (so audit events keep
them), hence with its own database session.  A failing job is logged, never raised.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait
from threading import Lock
from typing import Any

from flask import Flask
from flask import current_app
from flask import has_request_context
from flask import request
from werkzeug.test import EnvironBuilder

from portal.audit import record as audit_record
from portal.db import is_outage
from portal.db import outage_summary

log = logging.getLogger(__name__)

EXTENSION_KEY = "portal.background"
WORKERS = 4
_lock = Lock()


class _Pool:
    def __init__(self) -> None:
        self.executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="portal-bg")
        self.pending: set[Future[None]] = set()
        self.lock = Lock()

    def track(self, future: Future[None]) -> None:
        with self.lock:
            self.pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        with self.lock:
            self.pending.discard(future)


def _pool(app: Flask) -> _Pool:
    with _lock:
        pool = app.extensions.get(EXTENSION_KEY)
        if pool is None:
            pool = app.extensions[EXTENSION_KEY] = _Pool()
        return pool


def submit(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Run ``fn(*args, **kwargs)`` soon, in another thread, with this request's context."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    name = getattr(fn, "__qualname__", repr(fn))

    def run() -> None:
        try:
            fn(*args, **kwargs)
        except Exception as exc:
            if is_outage(exc):  # the database away for a moment: one line, not a traceback
                log.warning(
                    "background job %s: database unavailable: %s", name, outage_summary(exc)
                )
                return
            log.exception("background job %s failed", name)

    environ_base: dict[str, str] | None = None
    path = "/"
    facts = audit_record.current_facts()
    if has_request_context():
        # Only these facts travel: the request object itself is not thread-safe.
        environ_base = {
            "REMOTE_ADDR": request.remote_addr or "",
            "HTTP_USER_AGENT": request.user_agent.string or "",
        }
        path = request.path

    def job() -> None:
        if environ_base is None:
            with app.app_context():
                run()
            return
        environ = EnvironBuilder(path=path, environ_base=environ_base).get_environ()
        with app.request_context(environ), audit_record.bound(facts):
            run()

    pool = _pool(app)
    pool.track(pool.executor.submit(job))


def wait_idle(app: Flask, timeout: float = 30.0) -> None:
    """Wait until every job submitted so far has finished (tests, and orderly shutdowns)."""
    pool: _Pool | None = app.extensions.get(EXTENSION_KEY)
    if pool is None:
        return
    while True:
        with pool.lock:
            pending = set(pool.pending)
        if not pending:
            return
        _done, not_done = wait(pending, timeout=timeout)
        if not_done:
            raise TimeoutError(f"{len(not_done)} background job(s) still running")


def shutdown(app: Flask) -> None:
    """Finish the queued jobs and stop the threads."""
    pool: _Pool | None = app.extensions.pop(EXTENSION_KEY, None)
    if pool is not None:
        pool.executor.shutdown(wait=True)

"""One log format for the app, gunicorn and the scheduler (docs/deploy.md, "Logs").

Production writes JSON lines: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``,
``pid`` and, inside a request, ``request_id``, ``user`` (the user's internal id, never the User
ID typed at login), ``route`` (the Flask endpoint); gunicorn's access lines add ``method``,
``path``, ``status``, ``duration_ms``, ``bytes``, ``remote`` and ``user_agent``.  Development
writes the same fields as readable text.  ``PORTAL_LOG_FORMAT`` (``json`` or ``text``) overrides
the choice.

The request id is taken from ``X-Request-ID`` only when a trusted proxy is in front
(``PORTAL_PROXY_FIX_HOPS`` > 0) and the value looks like an id; otherwise it is made here.  It is
echoed in the response and shown on error pages.  Nothing here reads the wall clock for the
app's decisions: a record's own ``created`` time is what the line shows.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import uuid
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from typing import Any

from flask import Flask
from flask import g
from flask import has_request_context
from flask import request
from werkzeug.wrappers import Response

FORMATS = ("json", "text")
REQUEST_ID_HEADER = "X-Request-ID"
#: What a proxy's request id may look like (uuid, hex, nginx's $request_id, dotted/dashed ids).
REQUEST_ID_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}")
#: Set on the WSGI environ so that gunicorn's access line can show what the app knew.
ENVIRON_REQUEST_ID = "portal.request_id"
ENVIRON_USER = "portal.user"
ENVIRON_ROUTE = "portal.route"
#: Fields a record may carry (as ``extra=``) that the formatters show.
EXTRA_FIELDS = (
    "request_id",
    "user",
    "route",
    "method",
    "path",
    "status",
    "duration_ms",
    "bytes",
    "remote",
    "user_agent",
)
#: Marks the root handler installed by :func:`configure` so a second app replaces it.
_HANDLER_FLAG = "_portal_handler"


def log_format(environ: Mapping[str, str], config: Mapping[str, Any] | None = None) -> str:
    """``json`` or ``text``: ``PORTAL_LOG_FORMAT`` if set, else JSON unless in development."""
    config = config or {}
    chosen = config.get("PORTAL_LOG_FORMAT") or environ.get("PORTAL_LOG_FORMAT")
    if chosen:
        chosen = str(chosen).strip().lower()
        if chosen not in FORMATS:
            raise ValueError(f"PORTAL_LOG_FORMAT={chosen!r}: expected json or text")
        return chosen
    env = config.get("PORTAL_ENV") or environ.get("PORTAL_ENV") or "production"
    return "text" if env == "development" else "json"


def _utc(created: float) -> str:
    return (
        datetime.fromtimestamp(created, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


class RequestFields(logging.Filter):
    """Adds the current request's id, user and route to every record made inside a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            if getattr(record, "request_id", None) is None:
                record.request_id = request_id()
            if getattr(record, "user", None) is None:
                record.user = _user_pk()
            if getattr(record, "route", None) is None:
                record.route = request.endpoint
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line; no field is ever a multi-line string except ``exception``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for name in EXTRA_FIELDS:
            value = getattr(record, name, None)
            if value is not None and value != "":
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``2026-12-02T17:20:00.123Z INFO portal.x: message [request_id=… user=…]``."""

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{name}={getattr(record, name)}"
            for name in EXTRA_FIELDS
            if getattr(record, name, None) not in (None, "")
        )
        line = f"{_utc(record.created)} {record.levelname} {record.name}: {record.getMessage()}"
        if extras:
            line += f" [{extras}]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def formatter(kind: str) -> logging.Formatter:
    return JsonFormatter() if kind == "json" else TextFormatter()


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (gunicorn and test runners swap it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure(app: Flask) -> None:
    """Send every logger's records (the app's, werkzeug's, the scheduler's) through one
    handler on the root logger, in the chosen format, at ``PORTAL_LOG_LEVEL`` (default INFO).

    Under a test runner (``TESTING``) the root logger is left alone unless
    ``PORTAL_LOG_FORMAT`` is set, so that the runner's own capture keeps working.
    """
    config = app.config
    if config.get("TESTING") and not config.get("PORTAL_LOG_FORMAT"):
        return
    kind = log_format(os.environ, config)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_FLAG, False)]:
        root.removeHandler(old)
    handler = _StderrHandler()
    setattr(handler, _HANDLER_FLAG, True)
    handler.setFormatter(formatter(kind))
    handler.addFilter(RequestFields())
    root.addHandler(handler)
    root.setLevel(str(config.get("PORTAL_LOG_LEVEL") or "INFO").upper())
    logging.captureWarnings(True)  # Python's warnings as log lines too, not bare stderr text
    # gunicorn's own loggers have their handlers (deploy/gunicorn.conf.py formats them).
    for name in ("gunicorn.error", "gunicorn.access"):
        logging.getLogger(name).propagate = False


# --- request ids ---------------------------------------------------------------------------


def request_id() -> str:
    """This request's id: from a trusted proxy's ``X-Request-ID``, else a new one."""
    found = g.get("request_id")
    if found is None:
        found = _from_proxy() or uuid.uuid4().hex
        g.request_id = found
        request.environ[ENVIRON_REQUEST_ID] = found
    return str(found)


def _from_proxy() -> str | None:
    from flask import current_app

    if not current_app.config.get("PORTAL_PROXY_FIX_HOPS"):
        return None  # nobody trusted sets it: a client could put anything in our logs
    given = request.headers.get(REQUEST_ID_HEADER, "")
    return given if REQUEST_ID_SHAPE.fullmatch(given) else None


def _user_pk() -> int | None:
    """The logged-in user's internal id if this request already loaded it (never loads it:
    a log line must not query the database)."""
    user = g.get("_login_user")
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return getattr(user, "id", None)


def _start() -> None:
    request_id()


def _finish(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = request_id()
    request.environ[ENVIRON_ROUTE] = request.endpoint
    user = _user_pk()
    if user is not None:
        request.environ[ENVIRON_USER] = user
    return response


def init_app(app: Flask) -> None:
    """Request ids on every request and response, ``request_id`` in templates, and the log
    handler.  Registered before the other hooks, so even a refused request has an id."""
    configure(app)
    app.before_request(_start)
    app.after_request(_finish)
    app.context_processor(_template_values)


def _template_values() -> dict[str, str]:
    """``request_id`` for the error pages ("quote this reference"); none in emails."""
    return {"request_id": request_id()} if has_request_context() else {}

"""Error pages: generic, never a traceback (docs/security.md CF-02)."""

from __future__ import annotations

import contextlib
import logging

from flask import Flask
from flask import current_app
from flask import g
from flask import make_response
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import InternalServerError
from werkzeug.wrappers import Response

from portal import htmx
from portal import messages
from portal.accounts.forms import LoginForm
from portal.db import is_outage
from portal.db import outage_summary
from portal.extensions import db
from portal.landing import home_for

log = logging.getLogger(__name__)

LOGIN_ENDPOINTS = {"auth.portal_login": "portal", "auth.console_login": "console"}
#: Seconds a client is asked to wait after a 503 (the database briefly gone).
RETRY_AFTER_SECONDS = 5
UNAVAILABLE_TEXT = "The service is briefly unavailable. Please try again in a few seconds."


def _page(error: HTTPException, message: str | None = None) -> tuple[str, int]:
    code = error.code or 500
    name = error.name
    if code in messages.ERROR_PAGES and message is None:
        # The site's own words, not Werkzeug's (issue 12 point 5), and a way back.
        name, message = messages.ERROR_PAGES[code]
    return render_template(
        "errors/error.html",
        code=code,
        name=name,
        message=message or error.description,
        home=_home_url(),
    ), code


def _home_url() -> tuple[str, str]:
    """Where "back" is: the signed-in user's own home page, or the start page."""
    if current_user.is_authenticated:
        return home_for(session.get("door", "portal")), "Go to your home page"
    return url_for("portal_home.index"), "Go to the start page"


def _login_page(code: str, status: int) -> tuple[str, int]:
    door = LOGIN_ENDPOINTS[request.endpoint or ""]
    form = LoginForm(formdata=None)
    return render_template(
        "auth/login.html", form=form, door=door, message=messages.get(code)
    ), status


def handle_csrf(error: CSRFError) -> tuple[str, int] | Response:
    if request.endpoint in LOGIN_ENDPOINTS:
        body, status = _login_page(messages.FORM_EXPIRED, 400)
    else:
        body, status = _page(error, messages.get(messages.FORM_EXPIRED).text)
    response = make_response(body, status)
    if htmx.is_htmx():
        # htmx does not swap a 400: reload the page so it gets a fresh token (docs/security.md
        # CS-03).
        response.headers["HX-Refresh"] = "true"
    return response


def _size(n: int) -> str:
    """``6 MB``, ``1.5 MB``, ``49 kB``."""
    if n >= 1024 * 1024:
        return f"{round(n / (1024 * 1024), 1):g} MB"
    return f"{max(1, round(n / 1024))} kB"


def _too_large() -> tuple[str, int]:
    """A friendly 413 (docs/security.md UP-01): what the limits are and what to do."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    return render_template("errors/too_large.html", limit=_size(limit) if limit else None), 413


def handle_http(error: HTTPException) -> tuple[str, int]:
    if error.code == 413:
        return _too_large()
    if error.code == 429 and request.endpoint in LOGIN_ENDPOINTS:
        return _login_page(messages.RATE_LIMITED, 429)
    if error.code == 429:
        return _page(error, "Too many requests. Wait a few minutes and try again.")
    return _page(error)


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def handle_outage(error: Exception) -> Response:
    """The database is unreachable for a moment: a 503 with Retry-After and one log line.

    The page is rendered as for an anonymous visitor: loading the session's user would need
    the database again.  The next request gets a working connection (the dead one was
    invalidated; the pool pre-pings the rest), so nothing needs a restart.
    """
    log.warning(
        "database unavailable on %s %s: %s", request.method, request.path, outage_summary(error)
    )
    with contextlib.suppress(Exception):  # the connection may be gone: nothing to undo
        db.session.rollback()
    if htmx.is_htmx():  # a fragment was expected: a short text
        response = make_response(UNAVAILABLE_TEXT + "\n", 503)
        response.mimetype = "text/plain"
    elif _wants_json():
        response = make_response({"error": "unavailable", "retry_after": RETRY_AFTER_SECONDS}, 503)
    else:
        g._login_user = current_app.login_manager.anonymous_user()  # type: ignore[attr-defined]
        page = render_template(
            "errors/error.html", code=503, name="Service unavailable", message=UNAVAILABLE_TEXT
        )
        response = make_response(page, 503)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response.headers["Cache-Control"] = "no-store"
    return response


def handle_unexpected(error: Exception) -> tuple[str, int] | Response:
    if is_outage(error):
        return handle_outage(error)
    log.exception("unhandled error on %s %s", request.method, request.path)
    db.session.rollback()
    return _page(InternalServerError(), "Something went wrong on our side. Please try again.")


def end_session(_error: BaseException | None) -> None:
    """Teardown (before Flask-SQLAlchemy's own): end the request's database session.  When
    the database dropped the connection after the last statement, the rollback fails: that
    is logged in one line, the dead connection is discarded and the answer stands."""
    try:
        db.session.remove()
    except Exception as error:
        if not is_outage(error):
            raise
        log.warning("database connection lost at the end of a request: %s", outage_summary(error))
        with contextlib.suppress(Exception):  # the connection is invalidated now: this ends it
            db.session.remove()


def init_app(app: Flask) -> None:
    app.teardown_appcontext(end_session)  # registered after db.init_app, so it runs first
    app.register_error_handler(CSRFError, handle_csrf)
    app.register_error_handler(HTTPException, handle_http)
    app.register_error_handler(Exception, handle_unexpected)

"""Error pages: generic, never a traceback (SECURITY CF-02)."""

from __future__ import annotations

import logging

from flask import Flask
from flask import current_app
from flask import make_response
from flask import render_template
from flask import request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import InternalServerError
from werkzeug.wrappers import Response

from portal import htmx
from portal.accounts.forms import LoginForm
from portal.extensions import db
from portal.guides import codes

log = logging.getLogger(__name__)

LOGIN_ENDPOINTS = {"auth.portal_login": "portal", "auth.console_login": "console"}


def _page(error: HTTPException, message: str | None = None) -> tuple[str, int]:
    code = error.code or 500
    return render_template(
        "errors/error.html", code=code, name=error.name, message=message or error.description
    ), code


def _login_page(code: str, status: int) -> tuple[str, int]:
    door = LOGIN_ENDPOINTS[request.endpoint or ""]
    form = LoginForm(formdata=None)
    return render_template("auth/login.html", form=form, door=door, message=codes.get(code)), status


def handle_csrf(error: CSRFError) -> tuple[str, int] | Response:
    if request.endpoint in LOGIN_ENDPOINTS:
        body, status = _login_page(codes.FORM_EXPIRED, 400)
    else:
        body, status = _page(error, codes.get(codes.FORM_EXPIRED).text)
    response = make_response(body, status)
    if htmx.is_htmx():
        # htmx does not swap a 400: reload the page so it gets a fresh token (SECURITY CS-03).
        response.headers["HX-Refresh"] = "true"
    return response


def _size(n: int) -> str:
    """``6 MB``, ``1.5 MB``, ``49 kB``."""
    if n >= 1024 * 1024:
        return f"{round(n / (1024 * 1024), 1):g} MB"
    return f"{max(1, round(n / 1024))} kB"


def _too_large() -> tuple[str, int]:
    """A friendly 413 (SECURITY UP-01): what the limits are and what to do."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    return render_template("errors/too_large.html", limit=_size(limit) if limit else None), 413


def handle_http(error: HTTPException) -> tuple[str, int]:
    if error.code == 413:
        return _too_large()
    if error.code == 429 and request.endpoint in LOGIN_ENDPOINTS:
        return _login_page(codes.RATE_LIMITED, 429)
    if error.code == 429:
        return _page(error, "Too many requests. Wait a few minutes and try again.")
    return _page(error)


def handle_unexpected(error: Exception) -> tuple[str, int]:
    log.exception("unhandled error on %s %s", request.method, request.path)
    db.session.rollback()
    return _page(InternalServerError(), "Something went wrong on our side. Please try again.")


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError, handle_csrf)
    app.register_error_handler(HTTPException, handle_http)
    app.register_error_handler(Exception, handle_unexpected)

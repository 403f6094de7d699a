"""The only module that reads HTMX request headers (docs/architecture.md §4)."""

from __future__ import annotations

from typing import Any

from flask import make_response
from flask import render_template
from flask import request
from werkzeug.wrappers import Response


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def target() -> str | None:
    """The id of the element an HTMX request will swap (``HX-Target``), if any."""
    return request.headers.get("HX-Target") if is_htmx() else None


def add_vary(response: Response) -> Response:
    """A view that answers differently to HTMX must say so to caches."""
    response.vary.add("HX-Request")
    response.vary.add("HX-Target")
    return response


def trigger(response: Response, event: str) -> Response:
    response.headers["HX-Trigger"] = event
    return response


def page_or_fragment(target_id: str, fragment: str, page: str, /, **context: Any) -> Response:
    """A list page's one view (docs/architecture.md §4): the results fragment when HTMX swaps
    ``#target_id`` (search as you type, paging), else the whole page; either way it varies."""
    template = fragment if target() == target_id else page
    return add_vary(make_response(render_template(template, **context)))

"""The only module that reads HTMX request headers (docs/architecture.md §4)."""

from __future__ import annotations

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

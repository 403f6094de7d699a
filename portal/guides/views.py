"""Guides: the index with its search, the Markdown pages, and the Troubleshooting Guide (rendered
from the login-message table)."""

from __future__ import annotations

from flask import Blueprint
from flask import abort
from flask import render_template
from flask import request
from werkzeug.wrappers import Response

from portal import htmx
from portal import messages
from portal.guides import pages

bp = Blueprint("guides", __name__, url_prefix="/guides")

RESULTS_ID = "guide-results"


@bp.get("/")
def index() -> Response:
    """All guides, and the results of a search (``?q=``); HTMX gets the results alone."""
    query = request.args.get("q", "")[: pages.MAX_QUERY_LENGTH].strip()
    hits = pages.search(query) if query else []
    return htmx.page_or_fragment(
        RESULTS_ID,
        "guides/_results.html",
        "guides/index.html",
        query=query,
        hits=hits,
        groups=pages.groups(),
        results_id=RESULTS_ID,
    )


@bp.get("/troubleshooting")
def troubleshooting() -> str:
    return render_template(
        "guides/troubleshooting.html",
        messages=messages.MESSAGES,
        sections=messages.SECTIONS,
        helpers=messages.HELPERS,
    )


@bp.get("/<slug>")
def page(slug: str) -> str:
    found = pages.get(slug)
    if found is None:
        abort(404)
    return render_template("guides/page.html", page=found, groups=pages.groups())

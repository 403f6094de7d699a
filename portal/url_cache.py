"""``url_for`` for templates, remembered per application: a page builds the same few dozen
links (navigation, footer, static files, sort headers) on every request, and Werkzeug's URL
building is a noticeable part of a page's time (issue 12 point 6).

A URL depends only on the endpoint, its values and the request's script root (links are
relative), so those are the key.  External URLs, anchors, methods and schemes, endpoints
relative to the current blueprint (``.name``) and unhashable values are passed straight to
Flask.  The cache is bounded: past ``LIMIT`` entries new URLs are built and not kept.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask import request
from flask import url_for as flask_url_for

LIMIT = 10_000
_PASSED_THROUGH = ("_external", "_anchor", "_method", "_scheme")


def url_for(endpoint: str, /, **values: Any) -> str:
    if endpoint.startswith(".") or any(name in values for name in _PASSED_THROUGH):
        return flask_url_for(endpoint, **values)
    cache: dict[tuple[Any, ...], str] = current_app.extensions.setdefault("url_cache", {})
    key = (
        endpoint,
        request.script_root,
        # The type too: 1 and 1.0 are equal keys but different URLs.
        *sorted((name, type(value), value) for name, value in values.items()),
    )
    try:
        found = cache.get(key)
    except TypeError:  # an unhashable value
        return flask_url_for(endpoint, **values)
    if found is None:
        found = flask_url_for(endpoint, **values)
        if len(cache) < LIMIT:
            cache[key] = found
    return found

"""Templates' remembered ``url_for`` (portal/url_cache.py) answers what Flask's would, for every
kind of call, and never hands one script root's URL to another."""

from __future__ import annotations

import flask
from flask import Flask

from portal import url_cache


def test_same_urls_as_flask(app: Flask) -> None:
    calls: list[tuple[str, dict[str, object]]] = [
        ("static", {"filename": "app.css"}),
        ("console.users", {}),
        ("console.users", {"q": "a b&c", "page": 2}),
        ("console.users", {"state": ["has_access", "access_removed"]}),  # unhashable
        ("console.user_page", {"pk": 5}),
        ("console.users", {"_anchor": "results"}),
        ("console.users", {"_external": True}),
    ]
    with app.test_request_context("/console/users"):
        for endpoint, values in calls:
            for _ in range(2):  # built, then remembered
                assert url_cache.url_for(endpoint, **values) == flask.url_for(endpoint, **values)


def test_each_script_root_its_own_urls(app: Flask) -> None:
    with app.test_request_context("/console/users"):
        plain = url_cache.url_for("console.users")
    with app.test_request_context("/console/users", base_url="http://localhost/firm"):
        mounted = url_cache.url_for("console.users")
        assert mounted == flask.url_for("console.users")
    with app.test_request_context("/console/users"):
        assert url_cache.url_for("console.users") == plain
    assert plain == "/console/users"
    assert mounted == "/firm/console/users"


def test_templates_use_it(app: Flask) -> None:
    assert app.jinja_env.globals["url_for"] is url_cache.url_for

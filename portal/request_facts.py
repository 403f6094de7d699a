"""The web layer's half of the audit's request facts (docs/architecture.md §2): read from
``flask.request`` here and bound for the services' ``audit.record`` calls, so that the audit
module below never reads the request itself."""

from __future__ import annotations

from flask import Flask
from flask import request

from portal.audit import record


def from_request() -> record.RequestFacts:
    """This request's IP address (after ProxyFix) and user agent."""
    return record.RequestFacts.of(request.remote_addr, request.user_agent.string)


def _bind() -> None:
    record.bind(from_request())


def _unbind(_exc: BaseException | None = None) -> None:
    record.unbind()


def init_app(app: Flask) -> None:
    """Bind the facts before any other hook can record an event; forget them at the end."""
    app.before_request(_bind)
    app.teardown_request(_unbind)

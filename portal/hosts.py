"""PORTAL_TRUSTED_HOSTS: a request whose Host is not one of ours gets a 400 (never a redirect
that reflects the Host it came with).

Unset (empty): no check.  Addresses written as IP literals (``127.0.0.1``, ``[::1]``,
``10.0.0.5:8000``) always pass, so health probes addressed to the server's IP are never stopped,
and so does ``localhost`` (loopback only: the test client and probes on the machine itself).
An entry that starts with a dot (``.example.com``) also admits every subdomain.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from flask import Flask
from flask import abort
from flask import current_app
from flask import request
from werkzeug.sansio.utils import host_is_trusted

#: Names that always pass: they can only reach the server from the machine itself.
LOOPBACK_NAMES = ("localhost",)


def parse(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"a.example, .b.example"`` (or a list of names) → ``("a.example", ".b.example")``."""
    if not value:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(name.strip().lower() for name in items if name and name.strip())


def hostname(host: str) -> str:
    """The name or address in a Host header, without its port or IPv6 brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host[1:]
    if host.count(":") == 1:
        return host.partition(":")[0]
    return host


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(hostname(host))
    except ValueError:
        return False
    return True


def is_allowed(host: str, trusted: tuple[str, ...]) -> bool:
    """True when ``host`` (a Host header) may be served under the ``trusted`` names."""
    if not trusted or is_ip_literal(host) or hostname(host) in LOOPBACK_NAMES:
        return True
    return bool(host_is_trusted(host, list(trusted)))


def check_host() -> None:
    trusted = current_app.config["PORTAL_TRUSTED_HOSTS"]
    if not trusted:
        return
    # The raw header (after ProxyFix, X-Forwarded-Host when trusted), not request.host, which
    # Flask may already validate on its own.
    host = request.environ.get("HTTP_HOST") or request.environ.get("SERVER_NAME", "")
    if not is_allowed(host, trusted):
        abort(400, description="This address is not served here.")


def init_app(app: Flask) -> None:
    """Check the Host before any other hook (the rate limiter's included)."""
    app.before_request_funcs.setdefault(None, []).insert(0, check_host)

"""Absolute links for emails and exports (docs/security.md RS-06).

Every link that leaves the portal (in an email, in an export) starts with the configured
``PORTAL_BASE_URL``, never with the Host header of the request that caused it: a forged Host
would otherwise put an attacker's site into a reset link or a notice.
"""

from __future__ import annotations

from flask import current_app


def base_url() -> str:
    """The configured ``PORTAL_BASE_URL`` without its trailing slash."""
    return str(current_app.config["PORTAL_BASE_URL"]).rstrip("/")


def absolute_url(path: str) -> str:
    """``path`` (starting with "/", query string and fragment allowed) under the base URL."""
    if not path.startswith("/"):
        raise ValueError(f"not an absolute path: {path!r}")
    return base_url() + path

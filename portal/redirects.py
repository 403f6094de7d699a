"""Where a ``next`` value may send the browser: only to a path on this site."""

from __future__ import annotations

from urllib.parse import urlsplit


def local_path(target: str | None, default: str, *, under: str = "/") -> str:
    """``target`` if it is a path on this site starting with ``under``, else ``default``.

    Refuses absolute and scheme-relative URLs (``//host``) and anything ``urlsplit`` cannot
    parse (e.g. ``/\\t/[`` is an invalid IPv6 host), so an open redirect is never possible.
    """
    target = target or ""
    try:
        parts = urlsplit(target)
    except ValueError:
        return default
    if parts.scheme or parts.netloc or target.startswith("//"):
        return default
    return target if parts.path.startswith(under) else default

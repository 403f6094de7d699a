"""``next`` targets: only paths on this site, never a 500 (one helper for every caller)."""

from __future__ import annotations

import pytest

from portal.redirects import local_path


@pytest.mark.parametrize(
    ("target", "under", "expected"),
    [
        ("/portal/", "/", "/portal/"),
        ("/console/users?q=a", "/console/", "/console/users?q=a"),
        ("/portal/", "/console/", "DEFAULT"),
        ("//evil.example/x", "/", "DEFAULT"),
        ("https://evil.example/", "/", "DEFAULT"),
        ("javascript:alert(1)", "/", "DEFAULT"),
        ("/\t/[", "/", "DEFAULT"),  # urlsplit raises ValueError: invalid IPv6 URL
        ("", "/", "DEFAULT"),
        (None, "/", "DEFAULT"),
    ],
)
def test_local_path(target: str | None, under: str, expected: str) -> None:
    assert local_path(target, "DEFAULT", under=under) == expected

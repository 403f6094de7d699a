"""deploy/gunicorn.conf.py: the access log never holds a token (docs/security.md LG-02, RS-07).

A real gunicorn with the production config file; the secret parts of the emailed links (a
password reset, the newsletter's confirm and unsubscribe) are replaced by ``[token]``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.live_server import gunicorn

pytestmark = pytest.mark.slow  # a real gunicorn

SECRETS = {
    "/password-reset/": "ResetTokenThatMustNotBeLogged0123456789abcdefg",
    "/newsletter/confirm/": "ConfirmTokenThatMustNotBeLogged0123456789abcd",
    "/newsletter/unsubscribe/": "WzEsImFAZXhhbXBsZS5jb20iXQ.UnsubscribeSignature",
}


def test_the_access_log_redacts_tokens(database_url: str, tmp_path: Path) -> None:
    log_path = tmp_path / "gunicorn.log"
    with gunicorn(database_url, log_path, workers=1, threads=2, ready_path="/portal/login") as base:
        for prefix, secret in SECRETS.items():
            requests.get(base + prefix + secret, timeout=30, allow_redirects=False)
        requests.get(base + "/password-reset/new", timeout=30, allow_redirects=False)
    log = log_path.read_text()
    for prefix, secret in SECRETS.items():
        assert secret not in log
        assert f"GET {prefix}[token] " in log
    assert "GET /password-reset/new " in log  # not a token: kept

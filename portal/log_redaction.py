"""Secrets never reach an access log: the one redaction used by gunicorn's access log
(deploy/gunicorn.conf.py) and by the development server's (werkzeug) log.

A path whose last segment is a secret (a password reset link, the newsletter's confirm and
unsubscribe links) is logged with that segment replaced by ``[token]``.  Every route with a
``<token>`` part must be listed in :data:`TOKEN_PATHS` (a test checks the app's routes).
"""

from __future__ import annotations

import logging
import re

#: The paths followed by a secret segment (docs/security.md LG-02, RS-07).
TOKEN_PATHS = (
    "password-reset",
    "newsletter/confirm",
    "newsletter/unsubscribe",
    "helpdesk/status",  # the requester's status link (portal.helpdesk.status_page)
    "one-time-password",  # the Console's page that shows a one-time password once
)
#: Segments after those paths that are pages, not secrets.
NOT_TOKENS = ("new",)

SECRET_PATH = re.compile(
    r"(/(?:"
    + "|".join(re.escape(path) for path in TOKEN_PATHS)
    + r")/)(?!(?:"
    + "|".join(NOT_TOKENS)
    + r")\b)[^/?#\s\"]+"
)
REDACTED = r"\1[token]"

#: The development server's logger.
WERKZEUG_LOGGER = "werkzeug"


def redact_tokens(text: str) -> str:
    """``GET /password-reset/abc HTTP/1.1`` → ``GET /password-reset/[token] HTTP/1.1``."""
    return SECRET_PATH.sub(REDACTED, text)


class TokenRedactingFilter(logging.Filter):
    """Rewrites each record's message with :func:`redact_tokens` (it never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_tokens(message)
        if redacted != message:
            record.msg = redacted
            record.args = ()
        return True


def install_werkzeug_redaction() -> None:
    """Redact the development server's request log (once per process)."""
    logger = logging.getLogger(WERKZEUG_LOGGER)
    if not any(isinstance(f, TokenRedactingFilter) for f in logger.filters):
        logger.addFilter(TokenRedactingFilter())

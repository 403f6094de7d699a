"""Tokens sent in emailed links (password reset, newsletter confirmation): 256 bits from the
CSPRNG, stored only as their sha256 (docs/security.md RS-01); one home for both."""

from __future__ import annotations

import hashlib
import secrets


def new_token() -> str:
    """A fresh token for a link (43 URL-safe characters)."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The sha256 (hex) kept in the database; any text hashes, even lone surrogates."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()

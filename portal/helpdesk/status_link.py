"""The requester's private status link (docs/security.md "The Helpdesk status link").

A link is ``/helpdesk/status/<id>-<mac>``: ``mac`` is an HMAC-SHA256 of the request's id and its
``status_salt`` under a key derived from ``SECRET_KEY`` (HKDF, a purpose label of its own, as
``portal.mail_secrets`` does), so the server can make the same link again for every email
without storing it, a database dump alone cannot make one, and a new salt revokes every link
sent so far.  Keys from ``SECRET_KEY_FALLBACKS`` still open links made before a rotation.

A link works while the request is open and for ``PORTAL_HELPDESK_STATUS_LINK_DAYS`` after it
was resolved (``resolved_at``).  Information added within ``PORTAL_HELPDESK_REOPEN_DAYS`` of
resolving reopens the request; later, the page asks for a new request.

This module makes and checks links and writes the resolution notice; it changes no account.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from enum import StrEnum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

from portal import emails
from portal import links
from portal import mail_queue
from portal.extensions import db
from portal.helpdesk import timeline
from portal.helpdesk.models import EventKind
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import Status
from portal.input_guard import MAX_ID

#: HKDF's "info": binds the derived key to this one use of the secret key.
PURPOSE = b"claims-portal-console helpdesk status link v1"
#: ``<id>-<43 characters of base64url>``.
_TOKEN = re.compile(r"^([1-9][0-9]{0,11})-([A-Za-z0-9_-]{43})$")
RESOLVED_PURPOSE = "helpdesk.resolved"


class Refusal(StrEnum):
    UNKNOWN = "unknown"  # not a link we made (tampered, another request, a changed salt)
    EXPIRED = "expired"  # resolved more than PORTAL_HELPDESK_STATUS_LINK_DAYS ago


def _key(secret_key: str | bytes) -> bytes:
    material = secret_key.encode() if isinstance(secret_key, str) else secret_key
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=PURPOSE).derive(material)


def _keys() -> list[bytes]:
    cfg = current_app.config
    return [_key(k) for k in [cfg["SECRET_KEY"], *(cfg.get("SECRET_KEY_FALLBACKS") or [])] if k]


def _mac(key: bytes, request_id: int, salt: str) -> str:
    digest = hmac.new(key, f"{request_id}:{salt}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def new_salt() -> str:
    return secrets.token_hex(16)


def ensure_salt(req: HelpdeskRequest) -> str:
    """The request's salt, made now for a request from before the status link (the caller is
    inside a write transaction)."""
    if not req.status_salt:
        req.status_salt = new_salt()
    return req.status_salt


def revoke(req: HelpdeskRequest) -> None:
    """Every link sent so far stops working; the next email carries a new one."""
    req.status_salt = new_salt()


def token(req: HelpdeskRequest) -> str:
    """The token of ``req``'s link (made with the current secret key)."""
    return f"{req.id}-{_mac(_keys()[0], req.id, ensure_salt(req))}"


def link(req: HelpdeskRequest) -> str:
    """The absolute link for an email (``PORTAL_BASE_URL``; docs/security.md RS-06)."""
    return links.absolute_url(f"/helpdesk/status/{token(req)}")


def token_digest(text: str) -> str:
    """What the session keeps instead of the token itself (the token stays in the email)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def link_days() -> int:
    return int(current_app.config["PORTAL_HELPDESK_STATUS_LINK_DAYS"])


def reopen_days() -> int:
    return int(current_app.config["PORTAL_HELPDESK_REOPEN_DAYS"])


def expired(req: HelpdeskRequest, now: datetime) -> bool:
    """Resolved more than PORTAL_HELPDESK_STATUS_LINK_DAYS ago."""
    return (
        req.status == Status.RESOLVED.value
        and req.resolved_at is not None
        and now >= req.resolved_at + timedelta(days=link_days())
    )


def can_reopen(req: HelpdeskRequest, now: datetime) -> bool:
    """Information added now reopens a resolved request (within PORTAL_HELPDESK_REOPEN_DAYS)."""
    if req.status != Status.RESOLVED.value:
        return True
    return req.resolved_at is None or now < req.resolved_at + timedelta(days=reopen_days())


@dataclass(frozen=True)
class Checked:
    request: HelpdeskRequest | None
    refusal: Refusal | None


def _matches(req: HelpdeskRequest, mac: str) -> bool:
    if not req.status_salt:
        return False
    return any(hmac.compare_digest(_mac(key, req.id, req.status_salt), mac) for key in _keys())


def check(text: str, now: datetime) -> Checked:
    """The request ``text`` (a token from a link) opens, or why it opens none."""
    found = _TOKEN.match(text or "")
    if found is None or int(found.group(1)) > MAX_ID:
        return Checked(None, Refusal.UNKNOWN)
    req = db.session.get(HelpdeskRequest, int(found.group(1)))
    if req is None or not _matches(req, found.group(2)):
        return Checked(None, Refusal.UNKNOWN)
    if expired(req, now):
        return Checked(None, Refusal.EXPIRED)
    return Checked(req, None)


def check_digest(request_id: int, digest: str, now: datetime) -> Checked:
    """The session's (id, digest of the token) again: the salt may have changed since."""
    req = db.session.get(HelpdeskRequest, request_id) if 0 < request_id <= MAX_ID else None
    if req is None or not req.status_salt:
        return Checked(None, Refusal.UNKNOWN)
    tokens = [f"{req.id}-{_mac(key, req.id, req.status_salt)}" for key in _keys()]
    if not any(hmac.compare_digest(token_digest(t), digest) for t in tokens):
        return Checked(None, Refusal.UNKNOWN)
    if expired(req, now):
        return Checked(None, Refusal.EXPIRED)
    return Checked(req, None)


# --- resolving: the requester is told ----------------------------------------------------------


def mark_resolved(req: HelpdeskRequest, now: datetime) -> None:
    req.resolved_at = now


def mark_reopened(req: HelpdeskRequest) -> None:
    req.resolved_at = None


def tell_resolved(req: HelpdeskRequest, now: datetime) -> mail_queue.QueuedMail:
    """Queue the "your request is resolved" email (fixed text, the reference and the status
    link: nothing typed by anyone, nothing about an account) and note it on the timeline."""
    body = emails.render(
        "helpdesk_resolved.txt",
        reference=req.reference,
        status_link=link(req),
        days=reopen_days(),
    )
    row = mail_queue.enqueue(
        req.email,
        f"Your Helpdesk request {req.reference} is resolved",
        body,
        purpose=RESOLVED_PURPOSE,
        ref=req.reference,
    )
    timeline.add_event(
        req, EventKind.MAIL_QUEUED, None, now, details=f"Resolution notice to {req.email}"
    )
    return row

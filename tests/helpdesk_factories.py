"""Helpdesk requests for the queue's tests, inserted directly (the public forms that create them
in production are tested on their own)."""

from __future__ import annotations

import struct
import zlib
from datetime import datetime
from itertools import count

from portal import clock
from portal.accounts.models import normalise_key
from portal.db import write_transaction
from portal.extensions import db
from portal.helpdesk.models import EventKind
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import RequestEvent
from portal.helpdesk.models import RequestKind
from portal.helpdesk.models import Screenshot
from portal.helpdesk.models import reference

_counter = count(1)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(width: int = 4, height: int = 3) -> bytes:
    """A valid RGB PNG, built without Pillow (the stored bytes are what the queue serves)."""
    raw = b"".join(b"\x00" + b"\xc8\x1e\x1e" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )


def make_request(
    *,
    kind: RequestKind | str = RequestKind.CONTACT,
    status: str = "new",
    environment: str = "live",
    stated_role: str | None = "administrator",
    console: str | None = "admin_console",
    error_message: str | None = "The User ID or password is incorrect.",
    name: str | None = None,
    email: str | None = None,
    organisation_name: str = "Acme Claims",
    user_id: str | None = None,
    details: str | None = None,
    created_at: datetime | None = None,
    screenshot: bytes | None = None,
) -> HelpdeskRequest:
    """One request (with its ``created`` event, and its screenshot when given)."""
    n = next(_counter)
    now = created_at or clock.now()
    kind = RequestKind(kind)
    if kind is RequestKind.RESEND_USER_ID:
        stated_role = console = error_message = None
    email = email or f"sender{n}@example.com"
    with write_transaction(db.session):
        req = HelpdeskRequest(
            kind=kind.value,
            status=status,
            created_at=now,
            updated_at=now,
            environment=environment,
            stated_role=stated_role,
            console=console,
            error_message=error_message,
            name=name or f"Sender {n}",
            email=email,
            email_key=normalise_key(email),
            organisation_name=organisation_name,
            user_id_given=user_id,
            user_id_key=normalise_key(user_id) if user_id else None,
            details=details,
            has_screenshot=screenshot is not None,
        )
        db.session.add(req)
        db.session.flush()
        db.session.add(
            RequestEvent(
                request_id=req.id,
                occurred_at=now,
                kind=EventKind.CREATED.value,
                actor="sender",
                to_status=status,
            )
        )
        if screenshot is not None:
            db.session.add(
                Screenshot(
                    request_id=req.id,
                    content_type="image/png",
                    filename=f"{reference(req.id)}-screenshot.png",
                    width=4,
                    height=3,
                    data=screenshot,
                )
            )
    return req

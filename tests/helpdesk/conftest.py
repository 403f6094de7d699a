"""Helpers for the Helpdesk tests: valid form data, images made with Pillow (no binary
fixtures), what the database holds, and every test's mail going to the real SMTP server."""

from __future__ import annotations

import io
import os
import re
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import func
from sqlalchemy import select
from werkzeug.datastructures import FileStorage
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse
from werkzeug.test import encode_multipart

from portal import background
from portal.extensions import db
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import RequestEvent
from portal.helpdesk.models import Screenshot
from portal.mail_queue import QueuedMail
from tests.mail_server import SmtpServer
from tests.mail_server import smtp_settings


@pytest.fixture
def settings(
    request: pytest.FixtureRequest,
    settings: dict[str, Any],
    smtp_server: SmtpServer,
    tmp_path: Any,
) -> dict[str, Any]:
    """The suite's settings, mail going to the real SMTP server (markers still win)."""
    return smtp_settings(
        request, settings, smtp_server, tmp_path / "outbox", "https://portal.example.test"
    )


@pytest.fixture(autouse=True)
def _background_jobs(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests with an app: stop its background threads afterwards.  (Pure tests get no app, so
    they run once, not once per database.)"""
    if "app" not in request.fixturenames:
        yield
        return
    app: Flask = request.getfixturevalue("app")
    yield
    background.shutdown(app)


# --- form data ----------------------------------------------------------------------------------


def contact_data(**overrides: Any) -> dict[str, Any]:
    """A Contact Us form that is valid as it is (no screenshot)."""
    data: dict[str, Any] = {
        "full_name": "Ada Lovelace",
        "email": "ada@example.com",
        "organisation": "Acme Claims Ltd",
        "user_id": "acme.ada",
        "role": "administrator",
        "console": "admin_console",
        "environment": "live",
        "error_message": "Your User ID has reached its expiry date.",
        "details": "Since this morning.",
        "website": "",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def resend_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "environment": "training",
        "organisation": "Acme Claims Ltd",
        "full_name": "Ada Lovelace",
        "email": "ada@example.com",
        "website": "",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def post_contact(
    client: FlaskClient,
    data: dict[str, Any] | None = None,
    file: tuple[bytes, str] | None = None,
    **kwargs: Any,
) -> TestResponse:
    """POST the Contact Us form (multipart, as a browser sends it), with an optional file.

    The body is encoded here, in memory: werkzeug's test client would spool a large one to a
    temporary file that it never closes (a ResourceWarning, an error in this suite).
    """
    form = MultiDict(contact_data() if data is None else data)
    if file is not None:
        content, filename = file
        form["screenshot"] = FileStorage(io.BytesIO(content), filename, content_type="image/png")
    boundary, body = encode_multipart(form)
    return client.post(
        "/helpdesk/contact",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
        **kwargs,
    )


_VARIES = re.compile(
    r"HD-\d{6}"
    r"|\"X-CSRFToken\": \"[^\"]+\""
    r"|value=\"[\w-]+\.[\w-]+\.[\w-]+\""  # the signed CSRF token in the page's other forms
)


def same_shape(page: str) -> str:
    """A page without what differs per request anyway: the reference, and the CSRF token
    (signed with a timestamp: it changes from one second to the next)."""
    return _VARIES.sub("?", page)


def settle(app: Flask) -> None:
    """Let the email sent after the response go (a background thread)."""
    background.wait_idle(app)


# --- what is stored -----------------------------------------------------------------------------


def counts() -> dict[str, int]:
    """Rows in every table a form submission writes."""
    db.session.rollback()
    return {
        model.__tablename__: db.session.scalar(select(func.count()).select_from(model)) or 0
        for model in (HelpdeskRequest, Screenshot, RequestEvent, QueuedMail)
    }


NOTHING = {
    "helpdesk_requests": 0,
    "helpdesk_screenshots": 0,
    "helpdesk_request_events": 0,
    "mail_queue": 0,
}


def only_request() -> HelpdeskRequest:
    db.session.rollback()
    db.session.expire_all()
    [request] = db.session.scalars(select(HelpdeskRequest)).all()
    return request


# --- images -------------------------------------------------------------------------------------


def image_bytes(
    fmt: str = "PNG", size: tuple[int, int] = (40, 30), mode: str = "RGB", **save: Any
) -> bytes:
    """A small picture with some detail (a gradient), saved by Pillow."""
    image = Image.new(mode, size)
    if mode in ("RGB", "RGBA"):
        image.putdata(
            [
                (x * 255 // size[0], y * 255 // size[1], 128) + ((200,) if mode == "RGBA" else ())
                for y in range(size[1])
                for x in range(size[0])
            ]
        )
    out = io.BytesIO()
    image.save(out, format=fmt, **save)
    return out.getvalue()


def noise_png(side: int) -> bytes:
    """A PNG of random pixels (it does not compress): about 3 × side² bytes."""
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


def png_declaring(width: int, height: int) -> bytes:
    """A complete, valid one-colour PNG of ``width`` × ``height`` one-bit pixels: a pixel
    flood (20000 × 20000 is 400 megapixels in about 50 kB)."""
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    compressor = zlib.compressobj(6)
    data = b"".join(compressor.compress(row) for _ in range(height))
    data += compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")
    )

"""``portal org export``: a zip of CSV and JSON with everything held about one firm."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from portal.accounts.models import Organisation
from portal.accounts.models import User
from portal.audit.models import AuditEvent
from portal.db import AnySession
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import RequestEvent
from portal.helpdesk.models import Screenshot
from portal.offboarding import scope

#: Never exported: secrets, and search keys derived from exported columns.
USER_COLUMNS = (
    "id",
    "user_id",
    "full_name",
    "email",
    "profile",
    "enabled",
    "active",
    "disabled_reason",
    "failed_attempts",
    "last_login_at",
    "access_granted_at",
    "expires_on",
    "created_at",
)
AUDIT_COLUMNS = (
    "id",
    "occurred_at",
    "organisation_id",
    "kind",
    "actor_id",
    "actor",
    "subject_id",
    "subject",
    "reason",
    "details",
    "ip",
    "user_agent",
)
REQUEST_COLUMNS = (
    "id",
    "kind",
    "status",
    "created_at",
    "updated_at",
    "environment",
    "stated_role",
    "console",
    "error_message",
    "name",
    "email",
    "organisation_name",
    "user_id_given",
    "details",
    "submitted_by_id",
    "suggestions_shown",
    "has_screenshot",
)


def _value(obj: Any, column: str) -> Any:
    value = getattr(obj, column, None)
    if isinstance(value, datetime) or hasattr(value, "isoformat"):
        return value.isoformat() if value is not None else None
    return value


def _csv(rows: list[Any], columns: tuple[str, ...]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if (v := _value(row, c)) is None else v for c in columns])
    return out.getvalue().encode()


def _rows(session: AnySession, org: Organisation) -> dict[str, list[Any]]:
    users = session.scalars(
        select(User).where(User.organisation_id == org.id).order_by(User.id)
    ).all()
    audit = session.scalars(
        select(AuditEvent).where(scope.audit_condition(org)).order_by(AuditEvent.id)
    ).all()
    requests = session.scalars(
        select(HelpdeskRequest).where(scope.request_condition(org)).order_by(HelpdeskRequest.id)
    ).all()
    return {"users": list(users), "audit": list(audit), "requests": list(requests)}


def counts(session: AnySession, org: Organisation) -> dict[str, int]:
    """How many users, audit events and Helpdesk requests the firm has now."""
    return {name: len(rows) for name, rows in _rows(session, org).items()}


def write(session: AnySession, org: Organisation, path: Path, *, now: datetime) -> dict[str, Any]:
    """Write the zip to ``path`` (new, 0600); returns its manifest."""
    rows = _rows(session, org)
    request_ids = [r.id for r in rows["requests"]]
    timelines = session.scalars(
        select(RequestEvent)
        .where(RequestEvent.request_id.in_(request_ids))
        .order_by(RequestEvent.id)
    ).all()
    shots = session.scalars(select(Screenshot).where(Screenshot.request_id.in_(request_ids))).all()
    by_request: dict[int, list[dict[str, Any]]] = {}
    for ev in timelines:
        by_request.setdefault(ev.request_id, []).append(
            {
                "occurred_at": ev.occurred_at.isoformat(),
                "kind": ev.kind,
                "actor": ev.actor,
                "from_status": ev.from_status,
                "to_status": ev.to_status,
                "details": ev.details,
            }
        )
    shot_names = {s.request_id: f"screenshots/{s.filename}" for s in shots}
    requests = [
        {
            "reference": r.reference,
            **{c: _value(r, c) for c in REQUEST_COLUMNS},
            "screenshot": shot_names.get(r.id),
            "timeline": by_request.get(r.id, []),
        }
        for r in rows["requests"]
    ]
    manifest = {
        "organisation": {"id": org.id, "name": org.name, "created_at": _value(org, "created_at")},
        "exported_at": now.isoformat(),
        "counts": {name: len(items) for name, items in rows.items()},
        "helpdesk_requests_matched_by": scope.MATCHING_RULE,
        "files": ["users.csv", "audit_events.csv", "helpdesk_requests.json", "screenshots/"],
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("manifest.json", json.dumps(manifest, indent=2))
            zf.writestr("users.csv", _csv(rows["users"], USER_COLUMNS))
            zf.writestr("audit_events.csv", _csv(rows["audit"], AUDIT_COLUMNS))
            zf.writestr("helpdesk_requests.json", json.dumps(requests, indent=2))
            for shot in shots:
                zf.writestr(shot_names[shot.request_id], shot.data)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return manifest


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of an export zip (raises ValueError when it is not one)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return json.loads(zf.read("manifest.json"))
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not an export made by `portal org export`: {exc}") from None


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()

"""Helpdesk requests, their screenshots and their timelines (docs/rules.md §5).

A request's reference (``HD-000123``) is its id, formatted: :func:`reference` and
:func:`parse_reference` convert.  The screenshot lives in its own table (one row per request, the
re-encoded bytes in the database: no orphan files, nothing to share between hosts) so that
queue queries never drag image data along.  Everything that happens to a request (created,
status changes, internal notes, emails, referral, actions taken on its behalf) is a
:class:`RequestEvent`: the timeline.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger
from sqlalchemy import CheckConstraint
from sqlalchemy import Connection
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import LargeBinary
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import event
from sqlalchemy import text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import Mapper
from sqlalchemy.orm import mapped_column

from portal.db import UTCDateTime
from portal.extensions import db

REFERENCE_PREFIX = "HD-"
_REFERENCE = re.compile(r"^\s*HD-?0*(\d{1,12})\s*$", re.IGNORECASE)


class RequestKind(StrEnum):
    CONTACT = "contact"
    RESEND_USER_ID = "resend_user_id"


class Status(StrEnum):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    REFERRED = "referred"
    #: A reply asked the requester for something: the business-hours clock is paused (docs: the
    #: Helpdesk's "loop closes"); what the requester adds on the status page moves it back.
    WAITING = "waiting"
    RESOLVED = "resolved"


class Environment(StrEnum):
    LIVE = "live"
    TRAINING = "training"


class StatedRole(StrEnum):
    """ "Are you an Administrator or a Claims Handler?" """

    ADMINISTRATOR = "administrator"
    CLAIMS_HANDLER = "claims_handler"


class Console(StrEnum):
    """ "Were you logging in to the Admin Console or the Portal?" """

    ADMIN_CONSOLE = "admin_console"
    PORTAL = "portal"


KIND_LABELS = {
    RequestKind.CONTACT: "Contact Us",
    RequestKind.RESEND_USER_ID: "Resend Admin User ID",
}
STATUS_LABELS = {
    Status.NEW: "New",
    Status.IN_PROGRESS: "In progress",
    Status.REFERRED: "Referred to Portal team",
    Status.WAITING: "Waiting on requester",
    Status.RESOLVED: "Resolved",
}
ENVIRONMENT_LABELS = {Environment.LIVE: "Live", Environment.TRAINING: "Training"}
ROLE_LABELS = {
    StatedRole.ADMINISTRATOR: "Administrator",
    StatedRole.CLAIMS_HANDLER: "Claims Handler",
}
CONSOLE_LABELS = {Console.ADMIN_CONSOLE: "Admin Console", Console.PORTAL: "Portal"}


def _sql_list(values: type[StrEnum]) -> str:
    return ", ".join(f"'{v.value}'" for v in values)


def reference(request_id: int) -> str:
    """``HD-000123`` for id 123 (at least six digits)."""
    return f"{REFERENCE_PREFIX}{request_id:06d}"


def parse_reference(text: str) -> int | None:
    """The id in ``HD-000123`` / ``hd123`` / ``HD-123``; None when ``text`` is not one."""
    match = _REFERENCE.match(text or "")
    return int(match.group(1)) if match else None


#: The stored length of ``name_key``: casefolding can lengthen a name ("ΐ" becomes three
#: characters), so the key is cut to this length (a prefix search needs no more).
NAME_KEY_LENGTH = 200


class HelpdeskRequest(db.Model):  # type: ignore[name-defined]
    __tablename__ = "helpdesk_requests"
    __table_args__ = (
        CheckConstraint(f"kind IN ({_sql_list(RequestKind)})", name="kind"),
        CheckConstraint(f"status IN ({_sql_list(Status)})", name="status"),
        CheckConstraint(f"environment IN ({_sql_list(Environment)})", name="environment"),
        CheckConstraint(
            f"stated_role IS NULL OR stated_role IN ({_sql_list(StatedRole)})", name="role"
        ),
        CheckConstraint(f"console IS NULL OR console IN ({_sql_list(Console)})", name="console"),
        # A Contact Us request always states role and console (docs/rules.md §5); the error message
        # or the screenshot is checked by the form (the screenshot lives in its own table).
        CheckConstraint(
            "kind <> 'contact' OR (stated_role IS NOT NULL AND console IS NOT NULL)",
            name="contact_states_role_and_console",
        ),
        CheckConstraint(
            "first_reply_seconds IS NULL OR first_reply_seconds >= 0", name="first_reply_seconds"
        ),
        CheckConstraint("resolve_seconds IS NULL OR resolve_seconds >= 0", name="resolve_seconds"),
        Index("ix_helpdesk_requests_created_at", "created_at"),
        # The report (portal/helpdesk/report.py) reads only indexes: a range of created_at
        # (covering every column it counts), and a range per error code.
        Index("ix_helpdesk_requests_kind_error_code", "kind", "error_code", "created_at"),
        Index(
            "ix_helpdesk_requests_report",
            "created_at",
            "kind",
            "stated_role",
            "console",
            "environment",
            "error_code",
            "first_reply_seconds",
            "resolve_seconds",
            "suggestions_shown",
        ),
        Index("ix_helpdesk_requests_status_created_at", "status", "created_at"),
        Index("ix_helpdesk_requests_kind_created_at", "kind", "created_at"),
        Index("ix_helpdesk_requests_email_key", "email_key"),
        Index("ix_helpdesk_requests_user_id_key", "user_id_key"),
        # The staff queue: each filter, newest (highest reference) first (migration 0007).
        Index("ix_helpdesk_requests_status_id", "status", "id"),
        Index("ix_helpdesk_requests_kind_id", "kind", "id"),
        Index("ix_helpdesk_requests_environment_id", "environment", "id"),
        Index("ix_helpdesk_requests_stated_role_id", "stated_role", "id"),
        Index("ix_helpdesk_requests_console_id", "console", "id"),
        # Working the queue (migration 0017): assignment, search by name, sort by age
        # (portal/helpdesk/ageing.py explains the age columns).
        Index("ix_helpdesk_requests_assigned_to_id_id", "assigned_to_id", "id"),
        # Counts "Mine" / "Unassigned" (status other than resolved) from the index alone.
        Index("ix_helpdesk_requests_assigned_to_id_status_id", "assigned_to_id", "status", "id"),
        Index("ix_helpdesk_requests_assigned_to_id_age_origin", "assigned_to_id", "age_origin"),
        Index("ix_helpdesk_requests_name_key", "name_key"),
        Index("ix_helpdesk_requests_age_origin_age_seconds", "age_origin", "age_seconds"),
        Index("ix_helpdesk_requests_status_age_origin", "status", "age_origin"),
        Index("ix_helpdesk_requests_status_age_seconds", "status", "age_seconds"),
        # Issue 14's bench at 100,000 requests (migration 0025_hdfinish): two filters counted
        # from one index; "Mine"/"Unassigned" paused requests by age; the report's medians
        # read in value order, with no sort (portal/helpdesk/report.py).
        Index("ix_helpdesk_requests_kind_environment_id", "kind", "environment", "id"),
        Index(
            "ix_helpdesk_requests_assigned_to_id_status_age_seconds",
            "assigned_to_id",
            "status",
            "age_seconds",
        ),
        Index("ix_helpdesk_requests_first_reply_seconds", "first_reply_seconds", "created_at"),
        Index("ix_helpdesk_requests_resolve_seconds", "resolve_seconds", "created_at"),
        CheckConstraint("age_seconds >= 0", name="age_seconds"),
        # The clock runs (both set) or is paused (neither).
        CheckConstraint("(age_origin IS NULL) = (age_since IS NULL)", name="age_clock"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default=Status.NEW.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    environment: Mapped[str] = mapped_column(String(10))
    stated_role: Mapped[str | None] = mapped_column(String(20), nullable=True)
    console: Mapped[str | None] = mapped_column(String(20), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254))
    #: casefolded, trimmed email (search, and the Send User ID match)
    email_key: Mapped[str] = mapped_column(String(254))
    organisation_name: Mapped[str] = mapped_column(String(200))
    #: The User ID the sender typed (optional), as typed, and casefolded.
    user_id_given: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_id_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    details: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: Set when the sender was logged in.
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    #: Troubleshooting Guide codes suggested while the error was typed, space-separated.
    suggestions_shown: Mapped[str | None] = mapped_column(String(500), nullable=True)
    has_screenshot: Mapped[bool] = mapped_column(default=False)
    #: The staff member (Helpdesk or Portal team) working on it; NULL: unassigned.
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    #: The casefolded, trimmed name (search by a prefix of the requester's name).
    name_key: Mapped[str] = mapped_column(String(NAME_KEY_LENGTH), default="")
    #: Age in business seconds up to ``age_since`` (the last time the clock started or stopped).
    age_seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    #: While the clock runs: when it started running again, and the business-clock reading
    #: (business_hours.WorkingHours.clock) at which the age was zero; NULL while paused.
    age_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    age_origin: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    #: Covered by the status link's HMAC (portal.helpdesk.status_link): a new salt revokes every
    #: link sent so far.  NULL until the first link is made (requests from before 0018).
    status_salt: Mapped[str | None] = mapped_column(String(32), nullable=True)
    #: When the request was last resolved (NULL while open): the status link works for
    #: PORTAL_HELPDESK_STATUS_LINK_DAYS after it.
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: The report's facts, set as they happen (portal/helpdesk/report_facts.py): the guide
    #: entry the error text names ('' for other text, NULL for none), and the working seconds
    #: to the first reply / resolution.
    error_code: Mapped[str | None] = mapped_column(String(12), nullable=True)
    first_reply_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    resolve_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)

    @property
    def reference(self) -> str:
        return reference(self.id)


class ReferenceCounter(db.Model):  # type: ignore[name-defined]
    """SQLite only: the highest request number ever given out (one row, ``id`` 1).

    SQLite numbers a new row ``max(id) + 1``, so a number given to a honeypot catch (no row)
    would be given again to the next real request.  PostgreSQL's sequence needs no help: there
    this table stays empty.
    """

    __tablename__ = "helpdesk_reference_counter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_id: Mapped[int] = mapped_column(Integer)


_NEXTVAL = text("SELECT nextval(pg_get_serial_sequence('helpdesk_requests', 'id'))")
_SQLITE_NEXT = text(
    "SELECT max(coalesce((SELECT max(id) FROM helpdesk_requests), 0),"
    " coalesce((SELECT last_id FROM helpdesk_reference_counter WHERE id = 1), 0)) + 1"
)
_SQLITE_KEEP = text(
    "INSERT INTO helpdesk_reference_counter (id, last_id) VALUES (1, :taken)"
    " ON CONFLICT (id) DO UPDATE SET last_id = excluded.last_id"
)


def take_request_number(connection: Connection) -> int:
    """The next request number, taken for good: the next request gets a higher one.

    Real requests take theirs as they are inserted; a honeypot catch takes one too, without a
    row, so its answer (``HD-000124``) follows the same sequence as everyone else's.  On SQLite
    call it inside a write transaction (``BEGIN IMMEDIATE``: one writer at a time).
    """
    if connection.dialect.name == "postgresql":
        return int(connection.scalar(_NEXTVAL))
    taken = int(connection.scalar(_SQLITE_NEXT))
    connection.execute(_SQLITE_KEEP, {"taken": taken})
    return taken


@event.listens_for(HelpdeskRequest, "before_insert")
def _number_on_sqlite(
    _mapper: Mapper[HelpdeskRequest], connection: Connection, target: HelpdeskRequest
) -> None:
    """On SQLite every new request takes its number from the counter (PostgreSQL: the id's own
    sequence, as before)."""
    if target.id is None and connection.dialect.name == "sqlite":
        target.id = take_request_number(connection)


class Screenshot(db.Model):  # type: ignore[name-defined]
    """The re-encoded image sent with a request (PNG or JPEG only)."""

    __tablename__ = "helpdesk_screenshots"
    __table_args__ = (
        CheckConstraint("content_type IN ('image/png', 'image/jpeg')", name="content_type"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("helpdesk_requests.id"), unique=True)
    content_type: Mapped[str] = mapped_column(String(20))
    #: A safe download name (ASCII, no path), e.g. ``HD-000123-screenshot.png``.
    filename: Mapped[str] = mapped_column(String(100))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class EventKind(StrEnum):
    CREATED = "created"
    STATUS_CHANGED = "status_changed"
    NOTE = "note"
    MAIL_QUEUED = "mail_queued"  # acknowledgement, guide reply, User ID sent
    GUIDE_REPLY = "guide_reply"
    USER_ID_SENT = "user_id_sent"
    USER_ID_NOT_MATCHED = "user_id_not_matched"
    REFERRED = "referred"
    ACCOUNT_ACTION = "account_action"  # a Portal team action taken for this request
    REPLY = "reply"  # a staff reply emailed to the requester and shown on the status page
    REQUESTER_ADDED = "requester_added"  # what the requester added on the status page
    ASSIGNED = "assigned"  # taken by, or given to, a staff member (details: who)
    STATUS_LINK_REPLACED = "status_link_replaced"  # a new salt: links sent so far stop working


#: What the staff timeline calls each kind of event: the one home for these words (the
#: request page's timeline, its HTMX refresh).  A status change adds "from … to …" itself.
EVENT_LABELS = {
    EventKind.CREATED: "Request sent",
    EventKind.STATUS_CHANGED: "Status changed",
    EventKind.NOTE: "Internal note",
    EventKind.MAIL_QUEUED: "Email to the requester",
    EventKind.GUIDE_REPLY: "Replied with a guide link",
    EventKind.USER_ID_SENT: "User ID sent",
    EventKind.USER_ID_NOT_MATCHED: "User ID not sent",
    EventKind.REFERRED: "Referred to the Portal team",
    EventKind.ACCOUNT_ACTION: "Portal team action on the account",
    EventKind.REPLY: "Reply to the requester",
    EventKind.REQUESTER_ADDED: "The requester added information",
    EventKind.ASSIGNED: "Assignment",
    EventKind.STATUS_LINK_REPLACED: "Status link replaced",
}


class RequestEvent(db.Model):  # type: ignore[name-defined]
    """One line of a request's timeline."""

    __tablename__ = "helpdesk_request_events"
    __table_args__ = (Index("ix_helpdesk_request_events_request_id_id", "request_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("helpdesk_requests.id"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(30))
    #: Who: a staff user's row id, or NULL for the sender / the system; ``actor`` keeps the name.
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    actor: Mapped[str] = mapped_column(String(64))
    from_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    to_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    #: Note text, the guide section replied with, what an action changed …
    details: Mapped[str | None] = mapped_column(Text, nullable=True)


# The age columns follow every status change (registers its mapper events).
from portal.helpdesk import ageing  # noqa: E402, F401

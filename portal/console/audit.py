"""The organisation's audit log (docs/rules.md R9, §4): filterable, paginated, exportable as CSV.

Administrators read only their own organisation's events.  The filters (User ID, kind, from/to
dates in the portal's time zone) are a GET form; a bad value is an error summary on a 400 page,
never a 500.  The CSV is streamed in batches and neutralises spreadsheet formulas.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from typing import Any
from typing import cast
from zoneinfo import ZoneInfo

from flask import Response
from flask import render_template
from flask import request
from flask import stream_with_context
from flask import url_for
from flask_login import current_user
from sqlalchemy import Select
from sqlalchemy import distinct
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import aliased
from wtforms import DateField
from wtforms import Form
from wtforms import SelectField
from wtforms import StringField
from wtforms import ValidationError
from wtforms.validators import Length
from wtforms.validators import Optional

from portal import clock
from portal.accounts.models import User
from portal.audit.models import SYSTEM
from portal.audit.models import AuditEvent
from portal.console import bp
from portal.console.decorators import admin_required
from portal.extensions import db

PER_PAGE = 50
#: Rows fetched per batch while streaming the CSV.
CSV_BATCH = 500
#: Far enough back and ahead for any real search; beyond these, date arithmetic overflows.
EARLIEST = date(1900, 1, 1)
LATEST = date(9998, 12, 31)
#: Deep pages are nonsense; a huge number must not reach the database as an OFFSET.
MAX_PAGE = 100_000

KIND_LABELS = {
    "login_succeeded": "Logged in",
    "login_failed": "Login failed",
    "login_refused": "Login refused (no access)",
    "locked_out": "Locked out",
    "system_disabled": "Disabled by the system",
    "access_removed": "Access removed",
    "remove_refused": "Access removal refused",
    "enabled": "Access given (Enabled checked)",
    "enable_refused": "Enabling refused",
    "password_reset": "Password reset (self-service)",
    "password_reset_by_admin": "One-time password issued",
    "password_changed": "Password changed",
    "expiry_changed": "Expiry date changed",
    "expiry_refused": "Expiry date change refused",
    "user_created": "User created",
    "details_changed": "Details changed",
    "sessions_ended": "Signed out everywhere",
    "organisation_created": "Organisation created",
    "organisation_erased": "Organisation erased",
    "logged_out": "Logged out",
    "authz_denied": "Access to a page refused",
}

REASON_LABELS = {
    "lockout": "5 wrong passwords in a row",
    "inactivity": "no use for 90 days",
    "expiry": "expiry date reached",
    "unknown_user_id": "unknown User ID",
    "console": "not allowed in the Admin Console",
    "change": "wrong current password",
    "refused_self": "cannot change own access",
    "refused_last_admin": "last Administrator with access",
    "refused_expired": "expiry date reached: extend it first",
    "refused_past_date": "date in the past",
}


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind) or kind.replace("_", " ").capitalize()


def reason_label(reason: str | None) -> str:
    if not reason:
        return ""
    return REASON_LABELS.get(reason) or reason.replace("_", " ")


# --- the filter form --------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _no_control_characters(_form: Form, field: StringField) -> None:
    if field.data and _CONTROL.search(field.data):
        raise ValidationError("Enter a User ID using letters, digits and . _ - @ only")


def _real_date(label: str) -> Any:
    def check(_form: Form, field: DateField) -> None:
        if field.data is not None and not EARLIEST <= field.data <= LATEST:
            raise ValidationError(
                f"Enter a ‘{label}’ date between {EARLIEST.year} and {LATEST.year}"
            )

    return check


class AuditFilterForm(Form):
    """The GET filters: ``user``, ``kind``, ``from``, ``to`` (no CSRF: it changes nothing)."""

    user = StringField(
        "User ID",
        validators=[
            Optional(),
            Length(max=64, message="Enter a User ID of 64 characters or fewer"),
            _no_control_characters,
        ],
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
    )
    kind = SelectField("What happened", validate_choice=False)
    date_from = DateField(
        "From",
        name="from",
        validators=[Optional(), _real_date("From")],
        format="%Y-%m-%d",
    )
    date_to = DateField(
        "To",
        name="to",
        validators=[Optional(), _real_date("To")],
        format="%Y-%m-%d",
    )

    def __init__(self, formdata: Any, kinds: list[str]) -> None:
        super().__init__(formdata)
        self.kind.choices = [("", "Any")] + [(k, kind_label(k)) for k in kinds]
        self._kinds = set(kinds)

    def validate_kind(self, field: SelectField) -> None:
        if field.data and field.data not in self._kinds:
            raise ValidationError("Choose what happened from the list")

    def validate(self, extra_validators: Any = None) -> bool:
        ok = super().validate(extra_validators)
        for field, label in ((self.date_from, "From"), (self.date_to, "To")):
            if field.raw_data and field.raw_data[0].strip() and field.data is None:
                # DateField's own message ("Not a valid date value.") says too little.
                cast("list[str]", field.errors)[:] = [
                    f"Enter a real ‘{label}’ date, in the form YYYY-MM-DD, for example 2025-03-31"
                ]
                ok = False
        if (
            ok
            and self.date_from.data is not None
            and self.date_to.data is not None
            and self.date_from.data > self.date_to.data
        ):
            self.date_to.errors = [*self.date_to.errors, "‘To’ must be the same as or after ‘From’"]
            ok = False
        return ok

    def query_args(self) -> dict[str, str]:
        """The valid filters as query parameters (for pagination and the CSV link)."""
        args = {
            "user": self.user.data or "",
            "kind": self.kind.data or "",
            "from": self.date_from.data.isoformat() if self.date_from.data else "",
            "to": self.date_to.data.isoformat() if self.date_to.data else "",
        }
        return {key: value for key, value in args.items() if value}


@dataclass(frozen=True, slots=True)
class Filters:
    organisation_id: int
    user: str | None = None
    kind: str | None = None
    start: datetime | None = None  # inclusive, UTC
    end: datetime | None = None  # exclusive, UTC


def day_bounds(first: date | None, last: date | None, tz: str) -> tuple[datetime | None, ...]:
    """The UTC instants from the start of ``first`` to the end of ``last`` (both inclusive),
    as calendar dates in time zone ``tz``: ``[start, end)``."""
    zone = ZoneInfo(tz)
    start = datetime.combine(first, time.min, tzinfo=zone).astimezone(UTC) if first else None
    end = (
        datetime.combine(last + timedelta(days=1), time.min, tzinfo=zone).astimezone(UTC)
        if last
        else None
    )
    return start, end


def filters_from(form: AuditFilterForm) -> Filters:
    start, end = day_bounds(form.date_from.data, form.date_to.data, clock.configured_timezone())
    return Filters(
        organisation_id=current_user.organisation_id,
        user=form.user.data or None,
        kind=form.kind.data or None,
        start=start,
        end=end,
    )


# --- the queries ------------------------------------------------------------------------

Actor = aliased(User, name="actor_user")
Subject = aliased(User, name="subject_user")


def events_query(f: Filters) -> Select[Any]:
    """The organisation's events matching ``f``, newest first, with the users' current names."""
    stmt = (
        select(
            AuditEvent.id,
            AuditEvent.occurred_at,
            AuditEvent.actor,
            Actor.full_name.label("actor_name"),
            AuditEvent.kind,
            AuditEvent.subject,
            Subject.full_name.label("subject_name"),
            AuditEvent.reason,
            AuditEvent.details,
            AuditEvent.ip,
        )
        .outerjoin(Actor, Actor.id == AuditEvent.actor_id)
        .outerjoin(Subject, Subject.id == AuditEvent.subject_id)
        .where(AuditEvent.organisation_id == f.organisation_id)
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
    )
    if f.user:
        wanted = func.lower(f.user)
        stmt = stmt.where(
            or_(func.lower(AuditEvent.actor) == wanted, func.lower(AuditEvent.subject) == wanted)
        )
    if f.kind:
        stmt = stmt.where(AuditEvent.kind == f.kind)
    if f.start is not None:
        stmt = stmt.where(AuditEvent.occurred_at >= f.start)
    if f.end is not None:
        stmt = stmt.where(AuditEvent.occurred_at < f.end)
    return stmt


def kinds_in_use(organisation_id: int) -> list[str]:
    return sorted(
        db.session.scalars(
            select(distinct(AuditEvent.kind)).where(AuditEvent.organisation_id == organisation_id)
        ),
        key=kind_label,
    )


@dataclass(frozen=True, slots=True)
class Row:
    id: int
    occurred_at: datetime
    local: datetime
    actor: str
    actor_name: str | None
    kind: str
    kind_label: str
    subject: str | None
    subject_name: str | None
    reason: str | None
    reason_label: str
    details: str | None
    ip: str | None


def to_row(r: Any, zone: ZoneInfo) -> Row:
    return Row(
        id=r.id,
        occurred_at=r.occurred_at,
        local=r.occurred_at.astimezone(zone),
        actor=r.actor,
        actor_name=r.actor_name,
        kind=r.kind,
        kind_label=kind_label(r.kind),
        subject=r.subject,
        subject_name=r.subject_name,
        reason=r.reason,
        reason_label=reason_label(r.reason),
        details=r.details,
        ip=r.ip,
    )


def _page_number() -> int:
    page = request.args.get("page", 1, type=int) or 1
    return max(1, min(page, MAX_PAGE))


def _form() -> AuditFilterForm:
    return AuditFilterForm(request.args, kinds_in_use(current_user.organisation_id))


# --- the views --------------------------------------------------------------------------


@bp.get("/audit")
@admin_required
def audit_log() -> tuple[str, int]:
    form = _form()
    tz = clock.configured_timezone()
    context: dict[str, Any] = {"form": form, "timezone": tz, "system": SYSTEM}
    if not form.validate():
        return render_template("console/audit.html", rows=None, **context), 400
    page = _page_number()
    fetched = db.session.execute(
        events_query(filters_from(form)).limit(PER_PAGE + 1).offset((page - 1) * PER_PAGE)
    ).all()
    zone = ZoneInfo(tz)
    rows = [to_row(r, zone) for r in fetched[:PER_PAGE]]
    args: dict[str, Any] = form.query_args()
    return render_template(
        "console/audit.html",
        rows=rows,
        page=page,
        first=(page - 1) * PER_PAGE + 1,
        previous_url=url_for("console.audit_log", **args, page=page - 1) if page > 1 else None,
        next_url=(
            url_for("console.audit_log", **args, page=page + 1) if len(fetched) > PER_PAGE else None
        ),
        csv_url=url_for("console.audit_csv", **args),
        filtered=bool(args),
        **context,
    ), 200


# --- CSV --------------------------------------------------------------------------------

CSV_HEADER = (
    "When (UTC)",
    "When (local)",
    "Time zone",
    "Who",
    "Who (name)",
    "What",
    "What (code)",
    "To whom",
    "To whom (name)",
    "Why",
    "Details",
    "IP address",
)

#: A cell starting with one of these is read as a formula by spreadsheets (OWASP CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """The cell as text; one that a spreadsheet would run as a formula gets a leading ``'``."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_record(row: Row, tz: str) -> list[str]:
    return [
        safe_cell(cell)
        for cell in (
            row.occurred_at.isoformat(timespec="seconds"),
            row.local.isoformat(timespec="seconds"),
            tz,
            row.actor,
            row.actor_name,
            row.kind_label,
            row.kind,
            row.subject,
            row.subject_name,
            row.reason_label,
            row.details,
            row.ip,
        )
    ]


def csv_lines(f: Filters, tz: str) -> Iterator[str]:
    """The CSV text, one batch of rows at a time (the rows are never all in memory)."""
    zone = ZoneInfo(tz)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    result = db.session.execute(events_query(f).execution_options(yield_per=CSV_BATCH))
    for batch in result.partitions():
        for r in batch:
            writer.writerow(csv_record(to_row(r, zone), tz))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()
    result.close()


def _filename_part(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-")
    return slug[:40].strip("-") or "organisation"


@bp.get("/audit.csv")
@admin_required
def audit_csv() -> Response | tuple[str, int]:
    form = _form()
    tz = clock.configured_timezone()
    if not form.validate():
        return render_template(
            "console/audit.html", rows=None, form=form, timezone=tz, system=SYSTEM
        ), 400
    f = filters_from(form)
    org = current_user.organisation
    name = _filename_part(org.name if org is not None else str(f.organisation_id))
    filename = f"audit-{name}-{clock.today().isoformat()}.csv"
    # The generator runs after this view returns, in the request's context (its own session).
    response = Response(stream_with_context(csv_lines(f, tz)), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response

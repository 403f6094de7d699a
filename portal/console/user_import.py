"""Import users from CSV (docs/rules.md §4 "Housekeeping at scale", §9 for the format).

Upload → a **preview** of every row's outcome, kept in the database (``user_imports`` and
``user_import_rows``) → ``confirm=yes`` posted to the preview's own URL → apply.  Nothing
changes before the confirmation.  Rows are matched by User ID (ignoring case), so applying is
idempotent: a row whose user exists by then is an update, one already applied is skipped.

Each row is one of: ``create``, ``update`` (the changes listed), ``unchanged``, or ``refused``
and why (a duplicate in the file, a bad email address, a date not after today — the one rule,
``rules.expiry_allowed`` —, an unknown profile, a User ID taken in another organisation,
demoting oneself or the organisation's last Administrator with access).  An empty cell keeps
the current value.  Applying goes through the same service functions as the forms.

Created users get one-time passwords: in a CSV file that the apply response itself is (never
stored), or emailed to each user through the durable mail queue (sealed at rest).  More than
PORTAL_IMPORT_BACKGROUND_OVER new users (a password hash each) apply as a background job,
which can only email.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from datetime import date
from datetime import datetime
from datetime import timedelta

from sqlalchemy import CheckConstraint
from sqlalchemy import Date
from sqlalchemy import ForeignKey
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from portal import clock
from portal import emails
from portal import mail_queue
from portal import messages
from portal.accounts import management
from portal.accounts import rules
from portal.accounts import service
from portal.accounts import states
from portal.accounts.models import Organisation
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.accounts.models import normalise_key
from portal.audit import kinds
from portal.audit.record import record
from portal.db import UTCDateTime
from portal.db import write_transaction
from portal.extensions import db
from portal.jobs import queue
from portal.links import absolute_url

CREATE = "create"
UPDATE = "update"
UNCHANGED = "unchanged"
REFUSED = "refused"
OUTCOMES = {CREATE: "Create", UPDATE: "Update", UNCHANGED: "Unchanged", REFUSED: "Refused"}

PREVIEW = "preview"
QUEUED = "queued"
APPLYING = "applying"
APPLIED = "applied"
FAILED = "failed"

DOWNLOAD = "download"
EMAIL = "email"

#: Largest file accepted (about 100,000 rows); rows beyond MAX_ROWS are refused as a whole.
MAX_BYTES = 10 * 1024 * 1024
MAX_ROWS = 100_000
COLUMNS = ("user_id", "full_name", "email", "profile", "expires_on")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: Rows applied per transaction (and between two progress updates).
CHUNK = 100
#: How long an emailed one-time password stays readable in the queue before it is wiped.
PASSWORD_MAIL_VALID = timedelta(days=7)

PROFILE_NAMES = {
    "claims_handler": Profile.CLAIMS_HANDLER.value,
    "claims handler": Profile.CLAIMS_HANDLER.value,
    "administrator": Profile.ADMINISTRATOR.value,
}

DUPLICATE = "Duplicate User ID in the file (also on line {line})"
BAD_EMAIL = "Bad email address: {error}"
UNKNOWN_PROFILE = "Unknown profile {value!r}: use claims_handler or administrator"
TAKEN_ELSEWHERE = "This User ID is taken in another organisation"
BAD_DATE = "Expiry date {value!r} is not a date (use YYYY-MM-DD or DD/MM/YYYY)"
MISSING_FOR_CREATE = "A new user needs {fields}"
NO_USER_ID = "No User ID"
DEMOTE_SELF = "You cannot take the Administrator profile from yourself"
DEMOTE_LAST = (
    "This is your organisation's last Administrator with access: "
    "its Administrator profile cannot be taken away"
)


class ImportError_(ValueError):
    """The file as a whole cannot be read (no user_id column, not CSV, too large)."""


class UserImport(db.Model):  # type: ignore[name-defined]
    __tablename__ = "user_imports"
    __table_args__ = (
        CheckConstraint(
            "status IN ('preview', 'queued', 'applying', 'applied', 'failed')",
            name="user_import_status",
        ),
        CheckConstraint(
            "delivery IS NULL OR delivery IN ('download', 'email')", name="user_import_delivery"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    filename: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), default=PREVIEW)
    delivery: Mapped[str | None] = mapped_column(String(10), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    total: Mapped[int] = mapped_column(Integer, default=0)
    #: Rows applied so far (the progress of a background apply).
    processed: Mapped[int] = mapped_column(Integer, default=0)

    @property
    def percent(self) -> int:
        return 100 if not self.total else self.processed * 100 // self.total


class ImportRow(db.Model):  # type: ignore[name-defined]
    __tablename__ = "user_import_rows"
    __table_args__ = (
        CheckConstraint(
            "outcome IN ('create', 'update', 'unchanged', 'refused')", name="user_import_outcome"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("user_imports.id"), index=True)
    line: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[str] = mapped_column(String(200))
    full_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    profile: Mapped[str | None] = mapped_column(String(20), nullable=True)
    expires_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    outcome: Mapped[str] = mapped_column(String(10))
    #: Why refused, or what an update changes ("email: a -> b; …").
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: Set once applied; with the result when the rules refused it at apply time.
    done: Mapped[bool] = mapped_column(default=False)
    result: Mapped[str | None] = mapped_column(Text, nullable=True)


# --- reading the file ------------------------------------------------------------------------


def decode(raw: bytes) -> str:
    """UTF-8 (with or without a BOM), else Windows-1252 (Excel's "CSV")."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def unguard(cell: str) -> str:
    """Remove the export's formula guard (a leading ``'`` before a formula character)."""
    cell = cell.strip()
    if len(cell) > 1 and cell[0] == "'" and cell[1:].startswith(_FORMULA_START):
        return cell[1:]
    return cell


def parse_date(text: str) -> date:
    """``YYYY-MM-DD`` or ``DD/MM/YYYY``; ValueError otherwise."""
    if "/" in text:
        d, m, y = text.split("/")
        if len(y) != 4:
            raise ValueError(text)
        return date(int(y), int(m), int(d))
    return date.fromisoformat(text)


def read_rows(text: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, {column: cell}) per data row; comma or semicolon, told by the header."""
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip().lstrip("\ufeff").casefold() for h in next(reader)]
    except StopIteration:
        raise ImportError_("The file is empty") from None
    except csv.Error as exc:
        raise ImportError_(f"The file is not CSV: {exc}") from None
    if "user_id" not in header:
        raise ImportError_(
            "The first line must name the columns, user_id among them "
            "(user_id, full_name, email, profile, expires_on)"
        )
    index = {name: header.index(name) for name in COLUMNS if name in header}
    try:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if reader.line_num - 1 > MAX_ROWS:
                raise ImportError_(f"The file has more than {MAX_ROWS:,} rows")
            yield (
                reader.line_num,
                {name: unguard(cells[i]) if i < len(cells) else "" for name, i in index.items()},
            )
    except csv.Error as exc:
        raise ImportError_(f"Line {reader.line_num} is not CSV: {exc}") from None


# --- the preview -----------------------------------------------------------------------------


@dataclass
class _Row:
    line: int
    user_id: str
    full_name: str | None = None
    email: str | None = None
    profile: str | None = None
    expires_on: date | None = None
    outcome: str = REFUSED
    detail: str | None = None
    problems: list[str] = field(default_factory=list)


def _existing(keys: list[str]) -> dict[str, User]:
    found: dict[str, User] = {}
    for start in range(0, len(keys), 900):
        for user in db.session.scalars(
            select(User).where(User.user_id_key.in_(keys[start : start + 900]))
        ):
            found[user.user_id_key] = user
    return found


def _admins_with_access(org_id: int, now: datetime, today: date) -> int:
    return int(
        db.session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.organisation_id == org_id, states.administrator_with_access(now, today))
        )
        or 0
    )


def _values(cells: dict[str, str], row: _Row, today: date) -> None:
    """Check and normalise the cells given (empty: keep / not given)."""
    if name := cells.get("full_name", ""):
        try:
            row.full_name = service.valid_full_name(name)
        except service.AccountError as exc:
            row.problems.append(str(exc))
    if email := cells.get("email", ""):
        try:
            row.email = service.valid_email(email)
        except service.AccountError as exc:
            row.problems.append(BAD_EMAIL.format(error=exc))
    if profile := cells.get("profile", ""):
        row.profile = PROFILE_NAMES.get(profile.casefold())
        if row.profile is None:
            row.problems.append(UNKNOWN_PROFILE.format(value=profile))
    if expiry := cells.get("expires_on", ""):
        try:
            row.expires_on = parse_date(expiry)
        except ValueError:
            row.problems.append(BAD_DATE.format(value=expiry))


def classify(
    text: str, *, org_id: int, actor: User, now: datetime, today: date, default_expiry: date
) -> list[_Row]:
    """Every row's outcome, in file order, without changing anything."""
    parsed = list(read_rows(text))
    keys = [normalise_key(c.get("user_id", "")) for _, c in parsed]
    existing = _existing([k for k in dict.fromkeys(keys) if k])
    admins_left = _admins_with_access(org_id, now, today)
    first_line: dict[str, int] = {}
    rows = []
    for (line, cells), key in zip(parsed, keys, strict=True):
        row = _Row(line=line, user_id=cells.get("user_id", "").strip())
        rows.append(row)
        if not key:
            row.detail = NO_USER_ID
            continue
        if key in first_line:
            row.detail = DUPLICATE.format(line=first_line[key])
            continue
        first_line[key] = line
        _values(cells, row, today)
        user = existing.get(key)
        if user is not None and user.organisation_id != org_id:
            row.problems.insert(0, TAKEN_ELSEWHERE)
        if user is None:
            _new(row, cells, today, default_expiry)
        elif not row.problems:
            admins_left = _changes(row, user, actor, now, today, admins_left)
        if row.problems:
            row.outcome, row.detail = REFUSED, "; ".join(row.problems)
    return rows


def _new(row: _Row, cells: dict[str, str], today: date, default_expiry: date) -> None:
    try:
        service.check_user_id(row.user_id)
    except service.AccountError as exc:
        row.problems.append(str(exc))
    missing = [n for n in ("full_name", "email", "profile") if not cells.get(n, "")]
    if missing:
        row.problems.append(MISSING_FOR_CREATE.format(fields=", ".join(missing)))
    if row.expires_on is not None and not rules.expiry_allowed(row.expires_on, today=today):
        row.problems.append(messages.EXPIRY_NOT_AFTER_TODAY)
    if not row.problems:
        row.outcome = CREATE
        if row.expires_on is None:
            row.expires_on = default_expiry


def _changes(
    row: _Row, user: User, actor: User, now: datetime, today: date, admins_left: int
) -> int:
    """An existing user of this organisation: update (what changes) or unchanged; returns the
    Administrators with access left once this row's demotion (if any) is applied."""
    changes = []
    for name in ("full_name", "email", "profile"):
        new = getattr(row, name)
        if new is not None and new != getattr(user, name):
            changes.append(f"{name}: {getattr(user, name)} -> {new}")
    if row.expires_on is not None and row.expires_on != user.expires_on:
        if not rules.expiry_allowed(row.expires_on, today=today):
            row.problems.append(messages.EXPIRY_NOT_AFTER_TODAY)
        changes.append(f"expires_on: {user.expires_on or 'none'} -> {row.expires_on}")
    demotes = (
        row.profile is not None
        and user.is_administrator
        and row.profile != Profile.ADMINISTRATOR.value
    )
    if demotes:
        if user.id == actor.id:
            row.problems.append(DEMOTE_SELF)
        elif states.is_administrator_with_access(user, now, today):
            if admins_left <= 1:
                row.problems.append(DEMOTE_LAST)
            else:
                admins_left -= 1
    if not row.problems:
        row.outcome = UPDATE if changes else UNCHANGED
        row.detail = "; ".join(changes) or None
    return admins_left


def create_preview(
    actor: User, filename: str, raw: bytes, *, now: datetime, today: date, default_days: int
) -> UserImport:
    """Read the file, classify every row, store the preview (in the caller's transaction)."""
    if len(raw) > MAX_BYTES:
        raise ImportError_(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB")
    assert actor.organisation_id is not None
    rows = classify(
        decode(raw),
        org_id=actor.organisation_id,
        actor=actor,
        now=now,
        today=today,
        default_expiry=today + timedelta(days=default_days),
    )
    imp = UserImport(
        organisation_id=actor.organisation_id,
        actor_id=actor.id,
        filename=(filename or "upload.csv")[:200],
        status=PREVIEW,
        created_at=now,
        total=len(rows),
        processed=0,
    )
    db.session.add(imp)
    db.session.flush()
    if rows:
        db.session.execute(
            ImportRow.__table__.insert(),
            [
                {
                    "import_id": imp.id,
                    "line": r.line,
                    "user_id": r.user_id[:200],
                    "full_name": r.full_name,
                    "email": r.email,
                    "profile": r.profile,
                    "expires_on": r.expires_on,
                    "outcome": r.outcome,
                    "detail": r.detail,
                    "done": r.outcome in (REFUSED, UNCHANGED),
                }
                for r in rows
            ],
        )
    return imp


def find(org_id: int, import_id: int) -> UserImport | None:
    return db.session.scalar(
        select(UserImport).where(UserImport.id == import_id, UserImport.organisation_id == org_id)
    )


def counts(import_id: int) -> dict[str, int]:
    return {
        outcome: int(n)
        for outcome, n in db.session.execute(
            select(ImportRow.outcome, func.count())
            .where(ImportRow.import_id == import_id)
            .group_by(ImportRow.outcome)
        )
    }


def rows(import_id: int, *, outcome: str | None = None, limit: int = 500) -> list[ImportRow]:
    stmt = select(ImportRow).where(ImportRow.import_id == import_id)
    if outcome:
        stmt = stmt.where(ImportRow.outcome == outcome)
    return list(db.session.scalars(stmt.order_by(ImportRow.line).limit(limit)))


# --- applying ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Created:
    user_id: str
    full_name: str
    email: str
    password: str


def start_apply(imp: UserImport, delivery: str, *, now: datetime, background_over: int) -> bool:
    """Mark the preview as being applied (in the caller's transaction); True when it goes to
    the background (more new users than ``background_over``: then only by email)."""
    creates = counts(imp.id).get(CREATE, 0)
    background = creates > background_over
    imp.delivery = EMAIL if background else delivery
    imp.status = QUEUED if background else APPLYING
    if background:
        queue.enqueue("user_import", imp.id, now=now)
    return background


def apply_rows(import_id: int, *, job_id: int | None = None) -> list[Created]:
    """Apply every row not yet done, a chunk per transaction.  Returns the users created by
    this call with their one-time passwords (kept nowhere else); with delivery ``email`` each
    is also queued to the user, sealed."""
    created: list[Created] = []
    while True:
        now, today = clock.now(), clock.today()
        queued: list[mail_queue.QueuedMail] = []
        with write_transaction(db.session):
            imp = db.session.get(UserImport, import_id, populate_existing=True)
            assert imp is not None
            actor = db.session.get(User, imp.actor_id)
            org = db.session.get(Organisation, imp.organisation_id)
            assert actor is not None
            assert org is not None
            imp.status = APPLYING
            todo = list(
                db.session.scalars(
                    select(ImportRow)
                    .where(ImportRow.import_id == import_id, ImportRow.done.is_(False))
                    .order_by(ImportRow.line)
                    .limit(CHUNK)
                )
            )
            if not todo:
                _finish(imp, actor, now)
                return created
            for row in todo:
                made = _apply_row(row, imp, actor, org, now, today)
                row.done = True
                if made is not None:
                    created.append(made)
                    if imp.delivery == EMAIL:
                        queued.append(_password_mail(made, org, now))
            db.session.flush()
            imp.processed = imp.total - int(
                db.session.scalar(
                    select(func.count())
                    .select_from(ImportRow)
                    .where(ImportRow.import_id == import_id, ImportRow.done.is_(False))
                )
                or 0
            )
            if job_id is not None:
                queue.heartbeat(job_id)
        mail_queue.deliver_soon(queued)


def _apply_row(
    row: ImportRow, imp: UserImport, actor: User, org: Organisation, now: datetime, today: date
) -> Created | None:
    user = service.find_user(row.user_id)
    if user is not None and user.organisation_id != imp.organisation_id:
        row.result = TAKEN_ELSEWHERE
        return None
    if user is None:
        if row.outcome != CREATE:
            row.result = "The user no longer exists"
            return None
        try:
            new, password = service.create_user(
                user_id=row.user_id,
                full_name=row.full_name or "",
                email=row.email or "",
                profile=row.profile or "",
                organisation=org,
                expires_on=row.expires_on,
                actor=actor,
                now=now,
            )
        except service.AccountError as exc:
            row.result = str(exc)
            return None
        row.result = "created"
        return Created(new.user_id, new.full_name, new.email, password)
    # Created meanwhile (a second apply, another import): an update, idempotent by User ID.
    results = []
    if any(v is not None for v in (row.full_name, row.email, row.profile)):
        change = management.update_details(
            actor,
            user,
            full_name=row.full_name or user.full_name,
            email=row.email or user.email,
            profile=row.profile or user.profile,
            now=now,
        )
        refusal = messages.PROFILE_REFUSALS.get(change.outcome)
        results.append(refusal or ("updated" if change.changed else "unchanged"))
    if row.expires_on is not None and row.expires_on != user.expires_on:
        decision = management.set_expiry(actor, user, row.expires_on, now=now, today=today)
        results.append(messages.CONSOLE_REFUSALS.get(decision.outcome) or "expiry date changed")
    row.result = "; ".join(results) or "unchanged"
    return None


def _password_mail(made: Created, org: Organisation, now: datetime) -> mail_queue.QueuedMail:
    text = emails.render(
        "import_one_time_password.txt",
        full_name=made.full_name,
        user_id=made.user_id,
        organisation=org.name,
        password=made.password,
        login_url=absolute_url("/portal/login"),
    )
    return mail_queue.enqueue(
        made.email,
        "Your new User ID for the Claims Portal",
        text,
        purpose="import_one_time_password",
        ref=made.user_id,
        secret_until=now + PASSWORD_MAIL_VALID,
    )


def _finish(imp: UserImport, actor: User, now: datetime) -> None:
    if imp.status == APPLIED:
        return
    found = counts(imp.id)
    imp.status = APPLIED
    imp.applied_at = now
    imp.processed = imp.total
    record(
        kinds.USERS_IMPORTED,
        actor=actor,
        subject=None,
        now=now,
        details=f"import {imp.id} ({imp.filename}): "
        + ", ".join(f"{OUTCOMES[k].lower()} {found.get(k, 0)}" for k in OUTCOMES),
    )


def run_job(job_id: int, import_id: int) -> None:
    """The background job's handler (``portal.jobs.queue``): passwords go by email only."""
    apply_rows(import_id, job_id=job_id)


def passwords_csv(created: list[Created]) -> str:
    """The one-time passwords of the users just created, as the apply response's file."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow(("user_id", "full_name", "email", "one_time_password"))
    from portal.audit.export import safe_cell

    for c in created:
        writer.writerow([safe_cell(v) for v in (c.user_id, c.full_name, c.email, c.password)])
    return buffer.getvalue()

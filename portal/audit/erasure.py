"""The only two ways audit events are deleted: a firm's erasure (``portal org delete``) and the
retention purge (``PORTAL_AUDIT_RETENTION_DAYS``, the nightly job).

The database's append-only triggers refuse every UPDATE of ``audit_events``, and every DELETE
unless the deleting transaction holds a row in ``audit_erasure_permits``.  :func:`permit`
inserts that row, lets the caller delete, and removes it before the transaction commits, so no
other transaction ever sees one (PostgreSQL hides uncommitted rows; SQLite has one writer).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from datetime import timedelta

from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import delete
from sqlalchemy import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from portal.audit.models import AuditEvent
from portal.db import AnySession
from portal.db import rowcount
from portal.extensions import db

ORG_DELETE = "org_delete"
RETENTION = "retention"


class AuditErasurePermit(db.Model):  # type: ignore[name-defined]
    """Present only inside a transaction that may delete audit events (never committed)."""

    __tablename__ = "audit_erasure_permits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reason: Mapped[str] = mapped_column(String(40))


@contextlib.contextmanager
def permit(session: AnySession, reason: str) -> Iterator[None]:
    """Inside an open write transaction: audit rows may be deleted until the block ends."""
    assert reason in (ORG_DELETE, RETENTION)
    permit_id = session.execute(
        insert(AuditErasurePermit).values(reason=reason).returning(AuditErasurePermit.id)
    ).scalar_one()
    remove = delete(AuditErasurePermit).where(AuditErasurePermit.id == permit_id)
    try:
        yield
    except BaseException:
        # SQLite: the transaction may still commit, so the permit goes.  PostgreSQL: the
        # transaction is aborted (this fails too, and nothing of it can commit).
        with contextlib.suppress(DBAPIError):
            session.execute(remove)
        raise
    session.execute(remove)


def purge_expired(session: AnySession, *, now: datetime, retention_days: int) -> int:
    """Delete the audit events older than ``retention_days`` (in the caller's transaction)."""
    cutoff = now - timedelta(days=retention_days)
    with permit(session, RETENTION):
        result = session.execute(delete(AuditEvent).where(AuditEvent.occurred_at < cutoff))
    return rowcount(result)

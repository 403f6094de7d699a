"""Recording audit events: called by services only, inside the caller's transaction.

The request facts (IP address, user agent) come from the web layer, never from ``flask.request``
here (docs/architecture.md §2): ``portal/request_facts.py`` binds them for each request, and a
caller may pass them explicitly.  Outside a request (CLI, nightly jobs) there are none.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol

from sqlalchemy import insert

from portal.audit import kinds
from portal.audit.models import SYSTEM
from portal.audit.models import AuditEvent
from portal.extensions import db

if TYPE_CHECKING:
    from portal.accounts.models import User

IP_MAX = 64
USER_AGENT_MAX = 300


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """Who asked, as far as the request tells: stored with each audit event it causes."""

    ip: str | None = None
    user_agent: str | None = None

    @classmethod
    def of(cls, ip: str | None, user_agent: str | None) -> RequestFacts:
        """Cut to the columns' lengths; empty values are ``None``."""
        return cls(
            ip=(ip or "")[:IP_MAX] or None,
            user_agent=(user_agent or "")[:USER_AGENT_MAX] or None,
        )


NO_REQUEST = RequestFacts()

_bound: ContextVar[RequestFacts] = ContextVar("audit_request_facts", default=NO_REQUEST)


def bind(facts: RequestFacts) -> None:
    """The facts of the request being handled (the web layer calls this for each request)."""
    _bound.set(facts)


def unbind() -> None:
    _bound.set(NO_REQUEST)


@contextlib.contextmanager
def bound(facts: RequestFacts) -> Iterator[None]:
    """``facts`` bound for the block (a background job carrying its request's facts)."""
    token = _bound.set(facts)
    try:
        yield
    finally:
        _bound.reset(token)


def current_facts() -> RequestFacts:
    return _bound.get()


class Party(Protocol):
    """An actor or subject of an event: an ORM ``User`` or a row with these three columns."""

    @property
    def id(self) -> int: ...
    @property
    def user_id(self) -> str: ...
    @property
    def organisation_id(self) -> int | None: ...


def event_values(
    kind: str,
    *,
    actor: Party | None,
    subject: Party | None,
    now: datetime,
    reason: str | None = None,
    details: str | None = None,
    organisation_id: int | None = None,
    actor_label: str | None = None,
    facts: RequestFacts | None = None,
) -> dict[str, Any]:
    """The columns of one event (:func:`record` and :func:`record_now` store them)."""
    org = organisation_id
    if org is None and subject is not None:
        org = subject.organisation_id
    if org is None and actor is not None:
        org = actor.organisation_id
    if facts is None:
        facts = _bound.get()
    return {
        "occurred_at": now,
        "organisation_id": org,
        "kind": kinds.check(kind),
        "actor_id": actor.id if actor is not None else None,
        "actor": actor.user_id if actor is not None else (actor_label or SYSTEM),
        "subject_id": subject.id if subject is not None else None,
        "subject": subject.user_id if subject is not None else None,
        "reason": str(reason) if reason is not None else None,
        "details": details,
        "ip": facts.ip,
        "user_agent": facts.user_agent,
    }


def record(
    kind: str,
    *,
    actor: User | None,
    subject: User | None,
    now: datetime,
    reason: str | None = None,
    details: str | None = None,
    organisation_id: int | None = None,
    actor_label: str | None = None,
    facts: RequestFacts | None = None,
) -> AuditEvent:
    """Add one event to the session (flushed and committed by the caller).

    ``kind`` must be in ``portal/audit/kinds.py``; ``facts`` defaults to the bound request's.
    """
    ev = AuditEvent(
        **event_values(
            kind,
            actor=actor,
            subject=subject,
            now=now,
            reason=reason,
            details=details,
            organisation_id=organisation_id,
            actor_label=actor_label,
            facts=facts,
        )
    )
    db.session.add(ev)
    return ev


#: One Core INSERT, built once (:func:`record_now`).
_INSERT = insert(AuditEvent.__table__)


def record_now(
    kind: str,
    *,
    actor: Party | None,
    subject: Party | None,
    now: datetime,
    reason: str | None = None,
    details: str | None = None,
) -> None:
    """Like :func:`record`, but inserted at once with one Core INSERT (no ORM object, no
    flush): for a hot path whose actor and subject are plain rows (the login's code step,
    docs/security.md PK-06).  Inside the caller's transaction, like :func:`record`."""
    values = event_values(
        kind, actor=actor, subject=subject, now=now, reason=reason, details=details
    )
    db.session.connection().execute(_INSERT, values)

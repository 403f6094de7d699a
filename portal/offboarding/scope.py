"""What belongs to a firm: its users, the audit events about them or the firm, and the Helpdesk
requests linked to its accounts or naming it.

A Helpdesk request belongs to the firm when any of these holds:

- it was sent by one of the firm's users while logged in (``submitted_by_id``);
- the User ID typed in it is one of the firm's User IDs (case-insensitive);
- the organisation name typed in it is the firm's name, ignoring surrounding spaces and the
  case of ASCII letters (``lower(trim(...))`` in SQL, the same on SQLite and PostgreSQL).

Anything else (a misspelt firm name, an email address only) is not matched: the export says so.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy import Select
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select

from portal.accounts.models import Organisation
from portal.accounts.models import User
from portal.audit.models import AuditEvent
from portal.helpdesk.models import HelpdeskRequest

MATCHING_RULE = (
    "A Helpdesk request is included when it was sent by one of the firm's users while logged "
    "in, or the User ID typed in it is one of the firm's User IDs (case-insensitive), or the "
    "organisation name typed in it equals the firm's name ignoring surrounding spaces and the "
    "case of ASCII letters. Requests naming the firm otherwise (misspelt, email only) are not."
)


def user_ids(org: Organisation) -> Select[Any]:
    return select(User.id).where(User.organisation_id == org.id)


def audit_condition(org: Organisation) -> ColumnElement[bool]:
    ids = user_ids(org)
    return or_(
        AuditEvent.organisation_id == org.id,
        AuditEvent.actor_id.in_(ids),
        AuditEvent.subject_id.in_(ids),
    )


def request_condition(org: Organisation) -> ColumnElement[bool]:
    keys = select(User.user_id_key).where(User.organisation_id == org.id)
    return or_(
        HelpdeskRequest.submitted_by_id.in_(user_ids(org)),
        HelpdeskRequest.user_id_key.in_(keys),
        func.lower(func.trim(HelpdeskRequest.organisation_name)) == org.name.strip().lower(),
    )

"""Who may open which area: a decorator per area, each refusal audited (docs/security.md AC-01).

``profile_required(area, *profiles)`` logs the user in first (Flask-Login), then answers 403 to
any other profile and records an ``authz_denied`` audit event naming the area and the route.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import abort
from flask import request
from flask_login import current_user
from flask_login import login_required

from portal import clock
from portal.accounts.models import Profile
from portal.audit import kinds
from portal.audit.record import record
from portal.db import write_transaction
from portal.extensions import db

View = Callable[..., Any]

#: The Helpdesk's public forms: anyone may reach them, even a user who must first change a
#: one-time password (they are for people who cannot get in).
PUBLIC_ENDPOINTS = frozenset(
    f"helpdesk_public.{name}"
    for name in (
        "contact",
        "contact_suggestions",
        "contact_sent",
        "resend_user_id",
        "resend_user_id_sent",
    )
)

#: Helpdesk and Portal team: the helpdesk queue (docs/rules.md §1).
STAFF = (Profile.HELPDESK, Profile.PORTAL_TEAM)


def deny(area: str) -> None:
    """Audit the refusal of the current request and answer 403."""
    actor = current_user._get_current_object()
    with write_transaction(db.session):
        record(
            kinds.AUTHZ_DENIED,
            actor=actor,
            subject=None,
            now=clock.now(),
            reason=area,
            details=f"{request.method} {request.path}"[:300],
        )
    abort(403)


def profile_required(area: str, *profiles: Profile) -> Callable[[View], View]:
    """Logged in with one of ``profiles``; anyone else gets an audited 403."""
    allowed = {p.value for p in profiles}

    def decorator(view: View) -> View:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if current_user.profile not in allowed:
                deny(area)
            return view(*args, **kwargs)

        return wrapped

    return decorator


#: The helpdesk queue: Helpdesk and Portal team users.
staff_required = profile_required("helpdesk", *STAFF)
#: The operator area (/operator/): Portal team users only.
portal_team_required = profile_required("operator", Profile.PORTAL_TEAM)

"""A user's page in the Portal team's area: finding the user and rendering the page (with an
error and the expiry form when an action was refused).  Used by ``views.py`` and
``user_actions.py``; no routes here (docs/architecture.md §2: route modules import no route
module)."""

from __future__ import annotations

from datetime import date
from datetime import timedelta
from typing import Any

from flask import abort
from flask import current_app
from flask import render_template

from portal import clock
from portal.accounts import queries
from portal.accounts import states
from portal.accounts.models import Organisation
from portal.accounts.models import User
from portal.extensions import db
from portal.helpdesk.models import HelpdeskRequest
from portal.operator.forms import ExpiryForm
from portal.second_factor import resets


def user_or_404(pk: int) -> User:
    user = db.session.get(User, pk)
    if user is None:
        abort(404)
    return user


def render_user(
    user: User,
    *,
    linked: HelpdeskRequest | None,
    error: str | None = None,
    ref_error: str | None = None,
    expiry: ExpiryForm | None = None,
    status: int = 200,
) -> tuple[str, int]:
    trail = queries.audit_trail(user.id, limit=50)
    organisation = (
        db.session.get(Organisation, user.organisation_id) if user.organisation_id else None
    )
    today = clock.today()
    if expiry is None:
        expiry = ExpiryForm(formdata=None, expires_on=_suggested_expiry(user, today))
    context: dict[str, Any] = {
        "user": user,
        "organisation": organisation,
        "expired": states.is_expired(user.expires_on, today),
        "disabled_by": queries.latest_disables([user.id]) if not user.enabled else {},
        "trail": trail,
        "linked": linked,
        "error": error,
        "ref_error": ref_error,
        "expiry": expiry,
        "factor_resets": resets.rows_for_user(user, clock.now()),
    }
    return render_template("operator/user.html", **context), status


def _suggested_expiry(user: User, today: date) -> date:
    """The usual extension: PORTAL_DEFAULT_EXPIRY_DAYS after today or the current date."""
    start = max(user.expires_on or today, today)
    try:
        return start + timedelta(days=current_app.config["PORTAL_DEFAULT_EXPIRY_DAYS"])
    except OverflowError:
        return start

"""Console access: Administrators only, and only for their own organisation's users."""

from __future__ import annotations

from flask import abort
from flask_login import current_user
from sqlalchemy import select

from portal.access import profile_required
from portal.accounts.models import Profile
from portal.accounts.models import User
from portal.extensions import db

#: Logged in as an Administrator; anyone else gets 403, and the refusal is audited.
admin_required = profile_required("console", Profile.ADMINISTRATOR)


def organisation_user_or_404(pk: int) -> User:
    """A user of the current Administrator's organisation; any other id is a 404 (docs/security.md
    AC-02): another organisation's users do not exist as far as this Administrator can tell."""
    user = db.session.scalar(
        select(User).where(User.id == pk, User.organisation_id == current_user.organisation_id)
    )
    if user is None:
        abort(404)
    return user

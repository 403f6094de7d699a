"""Console access: Administrators only, and only for their own organisation's users."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import abort
from flask import request
from flask_login import current_user
from flask_login import login_required
from sqlalchemy import select

from portal import clock
from portal.accounts.models import User
from portal.audit.record import record
from portal.db import write_transaction
from portal.extensions import db


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Logged in as an Administrator; anyone else gets 403, and the refusal is audited."""

    @wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_administrator:
            actor = current_user._get_current_object()
            with write_transaction(db.session):
                record(
                    "authz_denied",
                    actor=actor,
                    subject=None,
                    now=clock.now(),
                    reason="console",
                    details=f"{request.method} {request.path}"[:300],
                )
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def organisation_user_or_404(pk: int) -> User:
    """A user of the current Administrator's organisation; any other id is a 404 (SECURITY
    AC-02): another organisation's users do not exist as far as this Administrator can tell."""
    user = db.session.scalar(
        select(User).where(User.id == pk, User.organisation_id == current_user.organisation_id)
    )
    if user is None:
        abort(404)
    return user

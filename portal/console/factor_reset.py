"""The Console's "Reset second factor" for a user of the Administrator's organisation (SPEC
R10): a page that asks first, then the POST (routes on the ``console`` blueprint).

``resets.admin_reset`` decides: oneself, and the organisation's last Administrator with access,
are refused with the way to the Portal team.  Success ends the user's sessions and emails the
user (queued with the reset, sent after the commit).
"""

from __future__ import annotations

from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from portal import clock
from portal import mail_queue
from portal.console import bp
from portal.console.decorators import admin_required
from portal.console.decorators import organisation_user_or_404
from portal.db import write_transaction
from portal.extensions import db
from portal.second_factor import resets


@bp.get("/users/<int:pk>/second-factor-reset")
@admin_required
def user_factor_reset_confirm(pk: int) -> str:
    """Ask first (or say at once why it cannot be done here)."""
    user = organisation_user_or_404(pk)
    refusal = resets.admin_refusal(
        current_user._get_current_object(), user, now=clock.now(), today=clock.today()
    )
    return render_template(
        "second_factor/console_reset_confirm.html",
        user=user,
        error=resets.REFUSALS[refusal].format(user=user.user_id) if refusal else None,
    )


@bp.post("/users/<int:pk>/second-factor-reset")
@admin_required
def user_factor_reset(pk: int) -> Response | tuple[str, int]:
    user = organisation_user_or_404(pk)
    if request.form.get("confirmed") != "yes":
        return redirect(url_for("console.user_factor_reset_confirm", pk=pk))
    with write_transaction(db.session):
        result = resets.admin_reset(
            current_user._get_current_object(), user, now=clock.now(), today=clock.today()
        )
    mail_queue.deliver_soon(result.mails)
    user = organisation_user_or_404(pk)
    if result.refused:
        page = render_template(
            "second_factor/console_reset_confirm.html",
            user=user,
            error=result.message(user.user_id),
        )
        return page, 422
    flash(
        f"The second factor of {user.user_id} was reset: every session has ended, and "
        f"{user.user_id} has been told by email. At the next login they set up a new one.",
        "success",
    )
    return redirect(url_for("console.user_page", pk=pk))

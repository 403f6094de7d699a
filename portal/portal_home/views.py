"""The Portal home: profile, change password, the organisation's Administrators."""

from __future__ import annotations

from flask import Blueprint
from flask import redirect
from flask import render_template
from flask import url_for
from flask_login import current_user
from flask_login import login_required
from werkzeug.wrappers import Response

from portal import clock
from portal.accounts import service

bp = Blueprint("portal_home", __name__)


@bp.get("/")
def index() -> Response:
    return redirect(url_for("portal_home.home"))


@bp.get("/portal/")
@login_required
def home() -> str:
    user = current_user._get_current_object()
    admins = (
        service.organisation_administrators(
            user.organisation_id, now=clock.now(), today=clock.today()
        )
        if user.organisation_id
        else []
    )
    return render_template("portal/home.html", user=user, administrators=admins)

"""The Admin Console.  Its home says what is coming; users, dashboard and audit come next."""

from __future__ import annotations

from flask import Blueprint
from flask import render_template
from flask_login import current_user

from portal.console.decorators import admin_required

bp = Blueprint("console", __name__, url_prefix="/console")


@bp.get("/")
@admin_required
def home() -> str:
    return render_template("console/home.html", user=current_user)

"""The Console home: a dashboard of the organisation's users (filled in by the dashboard work)."""

from __future__ import annotations

from flask import render_template
from flask_login import current_user

from portal.console import bp
from portal.console.decorators import admin_required


@bp.get("/")
@admin_required
def home() -> str:
    return render_template("console/home.html", user=current_user)

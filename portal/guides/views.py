"""Guides: the Troubleshooting Guide is rendered from the login-message table."""

from __future__ import annotations

from flask import Blueprint
from flask import render_template

from portal.guides import codes

bp = Blueprint("guides", __name__, url_prefix="/guides")


@bp.get("/troubleshooting")
def troubleshooting() -> str:
    return render_template("guides/troubleshooting.html", messages=codes.MESSAGES)

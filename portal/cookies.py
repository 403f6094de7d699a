"""/cookies: the cookies the product sets (essential only), and the one choice there is to
remember: whether the cookie message has been hidden.  No JavaScript: a form POST sets it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint
from flask import current_app
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import RadioField
from wtforms.validators import InputRequired

from portal.layout import CHOICE_COOKIE
from portal.layout import HIDDEN
from portal.layout import message_hidden
from portal.redirects import local_path

bp = Blueprint("cookies", __name__)

CHOICE_LIFETIME = timedelta(days=365)


@dataclass(frozen=True)
class CookieInfo:
    name: str
    purpose: str
    expires: str


def cookies_in_use() -> list[CookieInfo]:
    """What the app really sets, read from its own settings (so the page stays true)."""
    c = current_app.config
    secure_name = c["SESSION_COOKIE_NAME"]
    idle = c["PORTAL_SESSION_IDLE_MINUTES"]
    absolute = c["PORTAL_SESSION_ABSOLUTE_HOURS"]
    return [
        CookieInfo(
            secure_name,
            "Keeps you logged in, and holds the security token that protects every form "
            "from cross-site request forgery (CSRF). It is set on your first visit, before you "
            "log in, because every page has a form (the newsletter sign-up).",
            "When you close your browser. A login also ends after "
            f"{idle} minutes without activity, and after {absolute} hours at most.",
        ),
        CookieInfo(
            CHOICE_COOKIE,
            "Remembers that you hid the cookie message, so it is not shown again.",
            f"{CHOICE_LIFETIME.days} days (1 year); set only if you hide the message.",
        ),
    ]


class CookieChoiceForm(FlaskForm):
    message = RadioField(
        "Do you want to see the cookie message at the top of each page?",
        choices={"hide": "No, hide it", "show": "Yes, show it"},
        validators=[InputRequired("Select whether to show the cookie message")],
    )


def _with_choice(response: Response, hide: bool) -> Response:
    if hide:
        response.set_cookie(
            CHOICE_COOKIE,
            HIDDEN,
            max_age=int(CHOICE_LIFETIME.total_seconds()),
            secure=bool(current_app.config["SESSION_COOKIE_SECURE"]),
            httponly=True,
            samesite="Lax",
        )
    else:
        response.delete_cookie(
            CHOICE_COOKIE, secure=bool(current_app.config["SESSION_COOKIE_SECURE"])
        )
    return response


@bp.route("/cookies", methods=["GET", "POST"])
def cookies() -> Response | tuple[str, int] | str:
    form = CookieChoiceForm()
    if request.method == "GET":
        form.message.data = "hide" if message_hidden() else "show"
    elif form.validate_on_submit():
        hide = form.message.data == "hide"
        response = redirect(url_for("cookies.cookies", saved="1"))
        return _with_choice(response, hide)
    status = 400 if form.errors else 200
    saved = request.args.get("saved") == "1"
    return render_template("cookies.html", form=form, cookies=cookies_in_use(), saved=saved), status


@bp.post("/cookies/hide-message")
def hide_message() -> Response:
    """The banner's button: hide the message and go back to the page it was on.

    The page is taken from the Referer (same-origin requests keep it: Referrer-Policy
    same-origin), so pages never echo their own URL into a form field.
    """
    back = url_for("portal_home.index")
    try:
        referrer = urlsplit(request.referrer or "")
    except ValueError:  # e.g. "http://[oops/": not a URL, so not a page of ours
        referrer = urlsplit("")
    if referrer.netloc == request.host:
        path = referrer.path + (f"?{referrer.query}" if referrer.query else "")
        back = local_path(path, back)
    return _with_choice(redirect(back), hide=True)

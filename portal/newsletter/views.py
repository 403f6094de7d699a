"""/newsletter: sign up (the footer form posts here too), confirm, unsubscribe, and the Portal
team's CSV of confirmed subscribers."""

from __future__ import annotations

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import redirect
from flask import render_template
from flask import stream_with_context
from flask import url_for
from flask_wtf import FlaskForm
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response as BaseResponse
from wtforms import EmailField
from wtforms import HiddenField
from wtforms.validators import DataRequired
from wtforms.validators import Email
from wtforms.validators import Length
from wtforms.validators import ValidationError

from portal import clock
from portal.access import portal_team_required
from portal.db import write_transaction
from portal.extensions import db
from portal.extensions import limiter
from portal.mail_queue import deliver_soon
from portal.newsletter import service

bp = Blueprint("newsletter", __name__, url_prefix="/newsletter")


TOO_LONG = "Email address must be 254 characters or fewer"


def _key_fits(_form: FlaskForm, field: EmailField) -> None:
    """The case-folded key is stored too, and case-folding can lengthen text (ß → ss)."""
    if len(service.email_key(field.data or "")) > 254:
        raise ValidationError(TOO_LONG)


class SignUpForm(FlaskForm):
    email = EmailField(
        "Email address",
        validators=[
            DataRequired("Enter your email address"),
            Length(max=254, message=TOO_LONG),
            _key_fits,
            Email(
                "Enter an email address in the correct format, like name@example.com",
                check_deliverability=False,
            ),
        ],
    )


class TokenForm(FlaskForm):
    token = HiddenField(validators=[DataRequired()])


def _rate_limit() -> str:
    return str(current_app.config["PORTAL_NEWSLETTER_RATE_LIMIT"])


@bp.route("", methods=["GET", "POST"])
@limiter.limit(_rate_limit, methods=["POST"])
def sign_up() -> BaseResponse | str | tuple[str, int]:
    """One answer whether or not the address was known (the email says which)."""
    form = SignUpForm()
    if form.validate_on_submit():
        email = form.email.data or ""
        try:
            with write_transaction(db.session):
                queued = service.sign_up(email, now=clock.now())
        except IntegrityError:  # the same new address, at the same moment: it exists now
            db.session.rollback()
            with write_transaction(db.session):
                queued = service.sign_up(email, now=clock.now())
        if queued is not None:
            deliver_soon([queued])
        return redirect(url_for("newsletter.check_email"))
    status = 400 if form.errors else 200
    return render_template("newsletter/sign_up.html", form=form), status


@bp.get("/check-your-email")
def check_email() -> str:
    return render_template("newsletter/check_email.html")


@bp.get("/confirm/<token>")
def confirm_page(token: str) -> Response:
    """A button, not an action: mail scanners that open links must not confirm for anyone.

    The page keeps the app's ``Referrer-Policy: same-origin`` (not ``no-referrer``): its form's
    POST must carry a Referer, or Flask-WTF refuses it over HTTPS (WTF_CSRF_SSL_STRICT), and
    same-origin never sends this URL, token included, to another site."""
    valid = service.pending_for(token, now=clock.now()) is not None
    db.session.rollback()
    form = TokenForm(token=token)
    html = render_template("newsletter/confirm.html", form=form, valid=valid)
    return Response(html, status=200 if valid else 404, mimetype="text/html")


@bp.post("/confirm")
def confirm() -> Response:
    form = TokenForm()
    if not form.validate_on_submit():
        html = render_template("newsletter/confirm.html", form=form, valid=False)
        return Response(html, status=400, mimetype="text/html")
    with write_transaction(db.session):
        result = service.confirm(form.token.data or "", now=clock.now())
    if result.mail is not None:
        deliver_soon([result.mail])
    html = render_template("newsletter/confirmed.html", outcome=result.outcome.value, form=form)
    status = 404 if result.outcome == service.Outcome.INVALID else 200
    return Response(html, status=status, mimetype="text/html")


@bp.get("/unsubscribe/<token>")
def unsubscribe_page(token: str) -> Response:
    subscriber = service.subscriber_for_unsubscribe(token)
    form = TokenForm(token=token)
    html = render_template(
        "newsletter/unsubscribe.html",
        form=form,
        valid=subscriber is not None,
        email=subscriber.email if subscriber else None,
        done=False,
    )
    db.session.rollback()
    status = 200 if subscriber is not None else 404
    return Response(html, status=status, mimetype="text/html")


@bp.post("/unsubscribe")
def unsubscribe() -> Response:
    form = TokenForm()
    subscriber = None
    if form.validate_on_submit():
        with write_transaction(db.session):
            subscriber = service.subscriber_for_unsubscribe(form.token.data or "")
            if subscriber is not None:
                service.unsubscribe(subscriber, now=clock.now())
    html = render_template(
        "newsletter/unsubscribe.html",
        form=form,
        valid=subscriber is not None,
        email=subscriber.email if subscriber else None,
        done=subscriber is not None,
    )
    status = 200 if subscriber is not None else 404
    return Response(html, status=status, mimetype="text/html")


@bp.get("/subscribers.csv")
@portal_team_required
def subscribers_csv() -> Response:
    """Confirmed subscribers only (Portal team)."""
    filename = f"newsletter-subscribers-{clock.today().isoformat()}.csv"
    response = Response(stream_with_context(service.confirmed_csv()), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response

"""The Portal team's area at ``/operator/`` (Portal team users only; every refusal is an audited
403): organisations, a firm's first Administrator, any user across organisations, re-enabling
and extending the expiry date, each audited with the helpdesk request reference when the action
came from one (``?ref=HD-000123`` carried from the request's page).

Views are thin: parse → ``service`` / ``actions`` inside ``write_transaction`` → render.
Changes are POSTs answered with a redirect (post/redirect/get) or the page again with 422.
The account actions on a user's page are in ``user_actions.py`` (routes on the same blueprint,
defined in the package); both render a user's page with ``user_page.py``.
"""

from __future__ import annotations

from datetime import timedelta

from flask import abort
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

from portal import clock
from portal import htmx
from portal import messages
from portal.access import portal_team_required
from portal.accounts import service
from portal.accounts.models import Organisation
from portal.accounts.models import Profile
from portal.db import write_transaction
from portal.extensions import db
from portal.helpdesk.models import HelpdeskRequest
from portal.helpdesk.models import Status
from portal.operator import actions
from portal.operator import bp
from portal.operator import directory
from portal.operator import mail_report
from portal.operator import organisations
from portal.operator.forms import AdministratorForm
from portal.operator.forms import OrganisationForm
from portal.operator.user_page import render_user
from portal.operator.user_page import user_or_404

#: Requests referred to the Portal team shown on the area's home page.
REFERRED_SHOWN = 20


# --- home -----------------------------------------------------------------------------------


@bp.get("/")
@portal_team_required
def home() -> str:
    referred = db.session.scalars(
        select(HelpdeskRequest)
        .where(HelpdeskRequest.status == Status.REFERRED.value)
        .order_by(HelpdeskRequest.created_at.desc(), HelpdeskRequest.id.desc())
        .limit(REFERRED_SHOWN)
    ).all()
    return render_template(
        "operator/home.html", referred=referred, undelivered=mail_report.undelivered_count()
    )


# --- mail -----------------------------------------------------------------------------------


@bp.get("/mail")
@portal_team_required
def mail() -> str:
    """Mail that failed after its retries or expired unsent, and mail being retried."""
    return render_template("operator/mail.html", report=mail_report.report())


# --- organisations --------------------------------------------------------------------------


@bp.get("/organisations")
@portal_team_required
def organisations_list() -> str:
    page = organisations.summaries(
        q=directory.clean_query(request.args.get("q")),
        page=organisations.page_number(request.args),
    )
    return render_template("operator/organisations.html", page=page)


@bp.route("/organisations/new", methods=["GET", "POST"])
@portal_team_required
def organisation_create() -> Response | tuple[str, int] | str:
    form = OrganisationForm()
    if form.validate_on_submit():
        name = form.name.data or ""
        try:
            with write_transaction(db.session):
                org = service.create_organisation(
                    name, actor=current_user._get_current_object(), now=clock.now()
                )
        except service.AccountError as exc:
            form.name.errors = [*form.name.errors, str(exc)]
        except IntegrityError:  # created by someone else at the same moment
            db.session.rollback()
            form.name.errors = [
                *form.name.errors,
                f"An organisation called {name.strip()!r} already exists",
            ]
        else:
            flash(f"{org.name} created: now register its first Administrator.", "success")
            return redirect(url_for("operator.organisation_page", pk=org.id))
    status = 422 if request.method == "POST" else 200
    return render_template("operator/organisation_new.html", form=form), status


def _organisation_or_404(pk: int) -> Organisation:
    org = db.session.get(Organisation, pk)
    if org is None:
        abort(404)
    return org


@bp.get("/organisations/<int:pk>")
@portal_team_required
def organisation_page(pk: int) -> str:
    summary = organisations.summary(pk)
    if summary is None:
        abort(404)
    return render_template(
        "operator/organisation.html",
        org=summary,
        administrators=organisations.administrators(pk),
    )


@bp.route("/organisations/<int:pk>/administrators/new", methods=["GET", "POST"])
@portal_team_required
def administrator_create(pk: int) -> tuple[str, int] | str:
    """Register an Administrator of the organisation (usually its first): a one-time password
    shown once, to be changed at first login."""
    org = _organisation_or_404(pk)
    form = AdministratorForm()
    today = clock.today()
    if request.method == "GET":
        form.expires_on.data = today + timedelta(
            days=current_app.config["PORTAL_DEFAULT_EXPIRY_DAYS"]
        )
    valid = form.validate_new(
        today, user_id_taken=service.user_id_taken, past_expiry=messages.FUTURE_DATE
    )
    if valid:
        try:
            with write_transaction(db.session):
                user, password = service.create_user(
                    user_id=form.user_id.data or "",
                    full_name=form.full_name.data or "",
                    email=form.email.data or "",
                    profile=Profile.ADMINISTRATOR,
                    organisation=org,
                    expires_on=form.expires_on.data,
                    actor=current_user._get_current_object(),
                    now=clock.now(),
                )
        except service.AccountError as exc:
            form.add_account_error(exc)
        except IntegrityError:  # the same User ID created at the same moment
            db.session.rollback()
            form.user_id.errors = [*form.user_id.errors, messages.USER_ID_TAKEN]
        else:
            return render_template(
                "operator/one_time_password.html", user=user, organisation=org, password=password
            )
    status = 422 if request.method == "POST" else 200
    existing = organisations.administrators(pk)
    return render_template(
        "operator/administrator_new.html", form=form, org=org, existing=existing
    ), status


# --- users across organisations -------------------------------------------------------------


def _reference_arg() -> tuple[HelpdeskRequest | None, str | None]:
    """The helpdesk request named by ``?ref=`` (or an error to show, the reference ignored)."""
    try:
        return actions.linked_request(request.args.get("ref")), None
    except actions.BadReference as exc:
        return None, f"{exc}: the reference was ignored."


@bp.get("/users")
@portal_team_required
def users() -> Response:
    linked, ref_error = _reference_arg()
    result = directory.search(request.args.get("q"))
    context = {"result": result, "linked": linked, "ref_error": ref_error}
    return htmx.page_or_fragment(
        "operator-results", "operator/_results.html", "operator/users.html", **context
    )


@bp.get("/users/<int:pk>")
@portal_team_required
def user_page(pk: int) -> tuple[str, int]:
    user = user_or_404(pk)
    linked, ref_error = _reference_arg()
    return render_user(user, linked=linked, ref_error=ref_error)

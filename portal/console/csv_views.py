"""The users list as CSV, and importing users from CSV (docs/rules.md §4, §9).

``GET /console/users/export.csv`` streams the list with its filters.  ``/console/users/import``
takes a file (field ``file``) and answers with a preview kept in the database, at
``/console/users/import/<id>``; posting ``confirm=yes`` to that URL applies it.
"""

from __future__ import annotations

from flask import abort
from flask import current_app
from flask import flash
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from flask import stream_with_context
from flask import url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from portal import clock
from portal import htmx
from portal.accounts import queries
from portal.console import bp
from portal.console import user_export
from portal.console import user_import
from portal.console.decorators import admin_required
from portal.db import write_transaction
from portal.extensions import db


@bp.get("/users/export.csv")
@admin_required
def users_export() -> Response:
    filters = queries.UserFilters.from_args(request.args)
    org = current_user.organisation
    name = user_export.filename(org.name, clock.today())
    # The generator runs after this view returns, in the request's context (its own session).
    response = Response(
        stream_with_context(user_export.csv_lines(current_user.organisation_id, filters)),
        mimetype="text/csv",
    )
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@bp.route("/users/import", methods=["GET", "POST"])
@admin_required
def users_import() -> Response | tuple[str, int] | str:
    if request.method == "GET":
        return render_template("console/users/import.html", error=None)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return render_template("console/users/import.html", error="Choose a CSV file"), 422
    try:
        raw = upload.read(user_import.MAX_BYTES + 1)
    finally:
        upload.close()  # a large upload is spooled to a temporary file
    try:
        with write_transaction(db.session):
            imp = user_import.create_preview(
                current_user._get_current_object(),
                upload.filename,
                raw,
                now=clock.now(),
                today=clock.today(),
                default_days=int(current_app.config["PORTAL_DEFAULT_EXPIRY_DAYS"]),
            )
            import_id = imp.id
    except user_import.ImportError_ as exc:
        return render_template("console/users/import.html", error=str(exc)), 422
    return redirect(url_for("console.users_import_preview", pk=import_id), 303)


def _import(import_id: int) -> user_import.UserImport:
    imp = user_import.find(current_user.organisation_id, import_id)
    if imp is None:
        abort(404)
    return imp


def _preview_page(imp: user_import.UserImport, status: int = 200) -> Response:
    found = user_import.counts(imp.id)
    over = int(current_app.config["PORTAL_IMPORT_BACKGROUND_OVER"])
    response = make_response(
        render_template(
            "console/users/import_preview.html",
            imp=imp,
            counts=found,
            outcomes=user_import.OUTCOMES,
            rows={k: user_import.rows(imp.id, outcome=k) for k in user_import.OUTCOMES},
            background=found.get(user_import.CREATE, 0) > over,
            background_over=over,
        ),
        status,
    )
    return htmx.add_vary(response)


@bp.get("/users/import/<int:pk>")
@admin_required
def users_import_preview(pk: int) -> Response:
    imp = _import(pk)
    if htmx.target() == "import-progress":
        response = make_response(render_template("console/users/_import_progress.html", imp=imp))
        if imp.status in (user_import.APPLIED, user_import.FAILED):
            response.headers["HX-Refresh"] = "true"
        return htmx.add_vary(response)
    return _preview_page(imp)


@bp.post("/users/import/<int:pk>")
@admin_required
def users_import_apply(pk: int) -> Response:
    import_id = pk
    imp = _import(import_id)
    if request.form.get("confirm") != "yes":
        flash("Nothing was changed: confirm the import to apply it.", "error")
        return _preview_page(imp, 422)
    delivery = request.form.get("delivery", user_import.DOWNLOAD)
    if delivery not in (user_import.DOWNLOAD, user_import.EMAIL):
        abort(400, "delivery must be download or email")
    background = False
    with write_transaction(db.session):
        imp = _import(import_id)
        if imp.status != user_import.PREVIEW:
            already = True  # applied (or being applied) already: a second confirm changes nothing
        else:
            already = False
            background = user_import.start_apply(
                imp,
                delivery,
                now=clock.now(),
                background_over=int(current_app.config["PORTAL_IMPORT_BACKGROUND_OVER"]),
            )
            delivery = imp.delivery or delivery
    if already or background:
        return redirect(url_for("console.users_import_preview", pk=import_id), 303)
    created = user_import.apply_rows(import_id)
    if delivery == user_import.DOWNLOAD and created:
        # The one-time passwords exist only in this response: never stored, never shown again.
        response = Response(user_import.passwords_csv(created), mimetype="text/csv")
        response.headers["Content-Disposition"] = (
            f'attachment; filename="one-time-passwords-import-{import_id}.csv"'
        )
        response.headers["Cache-Control"] = "no-store"
        return response
    flash(
        f"Import applied: {len(created)} user{'' if len(created) == 1 else 's'} created"
        + (", each emailed a one-time password." if created else "."),
        "success",
    )
    return redirect(url_for("console.users_import_preview", pk=import_id), 303)

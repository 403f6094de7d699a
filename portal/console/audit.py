"""The organisation's audit log pages (docs/rules.md R9, §4): filterable, paginated, exportable
as CSV.  Thin views: the form is ``audit_forms.py``, the reads ``portal/audit/queries.py``, the
CSV ``portal/audit/export.py``.

Administrators read only their own organisation's events.  The filters (User ID, kind, from/to
dates in the portal's time zone) are a GET form; a bad value is an error summary on a 400 page,
never a 500.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from flask import Response
from flask import render_template
from flask import request
from flask import stream_with_context
from flask import url_for
from flask_login import current_user

from portal import clock
from portal import paging
from portal.audit import export
from portal.audit import queries
from portal.audit.models import SYSTEM
from portal.console import bp
from portal.console.audit_forms import AuditFilterForm
from portal.console.decorators import admin_required

PER_PAGE = 50
#: Deep pages are nonsense; a huge number must not reach the database as an OFFSET.
MAX_PAGE = 100_000


def _form() -> AuditFilterForm:
    return AuditFilterForm(request.args, queries.kinds_in_use(current_user.organisation_id))


def _filters(form: AuditFilterForm) -> queries.Filters:
    start, end = queries.day_bounds(
        form.date_from.data, form.date_to.data, clock.configured_timezone()
    )
    return queries.Filters(
        organisation_id=current_user.organisation_id,
        user=form.user.data or None,
        kind=form.kind.data or None,
        start=start,
        end=end,
    )


def _page_number() -> int:
    page = request.args.get("page", 1, type=int) or 1
    return max(1, min(page, MAX_PAGE))


@bp.get("/audit")
@admin_required
def audit_log() -> tuple[str, int]:
    form = _form()
    tz = clock.configured_timezone()
    context: dict[str, Any] = {"form": form, "timezone": tz, "system": SYSTEM}
    if not form.validate():
        return render_template("console/audit.html", rows=None, **context), 400
    page = _page_number()
    rows, more = queries.page(_filters(form), number=page, per_page=PER_PAGE, zone=ZoneInfo(tz))
    args: dict[str, Any] = form.query_args()
    return render_template(
        "console/audit.html",
        rows=rows,
        page=page,
        first=paging.offset(page, PER_PAGE) + 1,
        previous_url=url_for("console.audit_log", **args, page=page - 1) if page > 1 else None,
        next_url=url_for("console.audit_log", **args, page=page + 1) if more else None,
        csv_url=url_for("console.audit_csv", **args),
        filtered=bool(args),
        **context,
    ), 200


@bp.get("/audit.csv")
@admin_required
def audit_csv() -> Response | tuple[str, int]:
    form = _form()
    tz = clock.configured_timezone()
    if not form.validate():
        return render_template(
            "console/audit.html", rows=None, form=form, timezone=tz, system=SYSTEM
        ), 400
    f = _filters(form)
    org = current_user.organisation
    filename = export.filename(
        org.name if org is not None else str(f.organisation_id), clock.today().isoformat()
    )
    # The generator runs after this view returns, in the request's context (its own session).
    response = Response(stream_with_context(export.csv_lines(f, tz)), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response

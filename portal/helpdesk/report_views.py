"""The Helpdesk report page and its CSV (issue 14 point 7): Helpdesk and Portal team only.

``/helpdesk/report?from=YYYY-MM-DD&to=YYYY-MM-DD`` (default: the last twelve weeks, this one
included); ``/helpdesk/report.csv`` with the same range.  Thin views: the numbers come from
``report``, the chart's geometry from ``report_chart``.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from datetime import timedelta

from flask import Blueprint
from flask import render_template
from flask import request
from werkzeug.wrappers import Response

from portal import clock
from portal.access import staff_required
from portal.audit.export import safe_cell
from portal.helpdesk import business_hours
from portal.helpdesk import report
from portal.helpdesk import report_chart

bp = Blueprint("helpdesk_report", __name__, url_prefix="/helpdesk")


def _date(name: str, errors: dict[str, str]) -> date | None:
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[name] = "Enter a real date, for example 2026-11-30"
        return None


def _range() -> tuple[report.DateRange, dict[str, str]]:
    """The chosen range, or the default; errors by field name (``from``, ``to``)."""
    default = report.DateRange.default(clock.today())
    errors: dict[str, str] = {}
    start = _date("from", errors) or default.start
    end = _date("to", errors) or default.end
    if not errors and end < start:
        errors["to"] = "The end date must be the same as or after the start date"
    if not errors and end - start > timedelta(weeks=report.MAX_WEEKS):
        errors["to"] = f"Choose at most {report.MAX_WEEKS} weeks"
    return report.DateRange(start, end), errors


def _build(rng: report.DateRange) -> report.Report:
    return report.build(
        rng, tz=clock.configured_timezone(), now=clock.now(), hours=business_hours.from_app()
    )


@bp.get("/report")
@staff_required
def report_page() -> Response:
    rng, errors = _range()
    if errors:
        html = render_template("helpdesk/report.html", rng=rng, errors=errors, data=None)
        return Response(html, status=400, mimetype="text/html")
    data = _build(rng)
    html = render_template(
        "helpdesk/report.html",
        rng=rng,
        errors={},
        data=data,
        chart=report_chart.weekly(data.weeks),
    )
    return Response(html, mimetype="text/html")


@bp.get("/report.csv")
@staff_required
def report_csv() -> Response:
    rng, errors = _range()
    if errors:
        return Response("\n".join(errors.values()) + "\n", status=400, mimetype="text/plain")
    out = io.StringIO()
    writer = csv.writer(out)
    for line in report.csv_rows(_build(rng)):
        writer.writerow([safe_cell(cell) for cell in line])
    response = Response(out.getvalue(), mimetype="text/csv")
    filename = f"helpdesk-report-{rng.start.isoformat()}-to-{rng.end.isoformat()}.csv"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response

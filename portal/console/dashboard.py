"""The Console home: a dashboard of the organisation's users (docs/rules.md §4).

Counts by state and reason, expiring within 30 days and unused for 60+ days, each linking to
the users list filtered the same way.  The counts are a self-contained fragment
(``console/_counts.html``) that refreshes itself on the ``users-changed`` event which the
Enabled toggle sends (docs/architecture.md §4); ``GET /console/counts`` returns that fragment alone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import make_response
from flask import render_template
from flask import url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from portal import clock
from portal.accounts import counts
from portal.console import bp
from portal.console.decorators import admin_required
from portal.console.reviews_dashboard import dashboard_context

#: The users list (``users.py``) takes exactly the query parameters the links here carry.
USERS_ENDPOINT = "console.users"


def users_list_url(**params: Any) -> str:
    """A link to the users list filtered by ``params`` (``state``, ``reason``, ``expiring``,
    ``dormant``): the same conditions as the count it is shown with."""
    return url_for(USERS_ENDPOINT, **params)


def _counts_context(now: datetime) -> dict[str, Any]:
    return {
        "counts": counts.user_counts(
            current_user.organisation_id, now=now, today=clock.local_date(now)
        ),
        "users_url": users_list_url,
        "expiring_days": counts.EXPIRING_DAYS,
        "dormant_days": counts.DORMANT_DAYS,
    }


@bp.get("/")
@admin_required
def home() -> str:
    now = clock.now()
    org_id = current_user.organisation_id
    return render_template(
        "console/home.html",
        user=current_user,
        expiring=counts.next_expiring(org_id, today=clock.local_date(now)),
        dormant=counts.longest_dormant(org_id, now=now),
        **_counts_context(now),
        **dashboard_context(current_user.organisation, now=now),
    )


@bp.get("/counts", endpoint="counts")
@admin_required
def counts_fragment() -> Response:
    """Only the counts fragment (its root is ``<section id="user-counts">``)."""
    html = render_template("console/_counts.html", **_counts_context(clock.now()))
    response = make_response(html)
    response.vary.add("HX-Request")
    return response

"""The Portal team's list of firms at risk of lockout (docs/rules.md §4, "The firm never
drifts into lockout"): no Administrator with access, one left, or every one of them losing
access within 30 days.  One grouped query (``accounts.lockout_risk.at_risk``); each row links
to the organisation's page and to registering another Administrator."""

from __future__ import annotations

from flask import render_template

from portal import clock
from portal.access import portal_team_required
from portal.accounts import lockout_risk
from portal.operator import bp


@bp.get("/at-risk")
@portal_team_required
def at_risk() -> str:
    now = clock.now()
    return render_template(
        "operator/at_risk.html",
        risks=lockout_risk.at_risk(now=now, today=clock.local_date(now)),
        horizon_days=lockout_risk.HORIZON_DAYS,
    )

"""What the Console dashboard shows about access reviews and the risk of lockout (its own
partials: ``console/reviews/_status.html``, ``console/reviews/_lockout_risk.html``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import current_app

from portal import clock
from portal.accounts import lockout_risk
from portal.accounts.models import Organisation
from portal.reviews import service


def dashboard_context(organisation: Organisation, *, now: datetime) -> dict[str, Any]:
    today = clock.local_date(now)
    risk = lockout_risk.organisation_risk(organisation.id, now=now, today=today)
    return {
        "status": service.status(
            organisation, today=today, days=int(current_app.config["PORTAL_ACCESS_REVIEW_DAYS"])
        ),
        "risk": risk,
        "admins_ending": (
            lockout_risk.administrators_ending(organisation.id, now=now, today=today)
            if risk is not None
            else []
        ),
        "horizon_days": lockout_risk.HORIZON_DAYS,
    }

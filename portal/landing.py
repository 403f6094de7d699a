"""Where a signed-in user lands: its work page (issue 12 point 5).

An Administrator who came in through the Admin Console's door lands on the Console; the
Helpdesk on its queue; the Portal team on the operator pages; everyone else on the Portal home.
"""

from __future__ import annotations

from flask import url_for
from flask_login import current_user

from portal.accounts.models import Profile

#: The work page of each staff profile (endpoint).
WORK_PAGES = {
    Profile.HELPDESK.value: "helpdesk_queue.index",
    Profile.PORTAL_TEAM.value: "operator.home",
}


def home_for(door: str) -> str:
    """The URL the signed-in user lands on after logging in through ``door``."""
    if door == "console" and current_user.is_administrator:
        return url_for("console.home")
    work = WORK_PAGES.get(current_user.profile)
    if work is not None:
        return url_for(work)
    return url_for("portal_home.home")

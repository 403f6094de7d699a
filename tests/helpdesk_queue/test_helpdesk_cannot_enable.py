"""Helpdesk cannot enable accounts (docs/rules.md §1, §5; issue 4 item 7): the queue's pages offer
no account control.  The walk of every account-changing route as a Helpdesk user (403, nothing
changed) is ``tests/operator/test_helpdesk_cannot_change_accounts.py``.
"""

from __future__ import annotations

from flask.testing import FlaskClient

from portal.accounts.models import Profile
from tests.factories import lock_out
from tests.factories import make_org
from tests.factories import make_user
from tests.helpdesk_factories import make_request
from tests.helpdesk_queue.conftest import sign_in_as


def test_the_queue_pages_have_no_account_control(client: FlaskClient) -> None:
    org = make_org()
    locked = lock_out(make_user(org, user_id="locked.out"))
    sign_in_as(client, Profile.HELPDESK)
    req = make_request(user_id=locked.user_id)
    for path in (f"/helpdesk/requests/{req.id}", "/helpdesk/requests"):
        body = client.get(path).get_data(as_text=True)
        for forbidden in ("/enabled", "/expiry", "/console/users", "/operator/", 'name="enabled"'):
            assert forbidden not in body, (path, forbidden)
    # The account is shown read-only on the request's page.
    page = client.get(f"/helpdesk/requests/{req.id}").get_data(as_text=True)
    assert "Read-only: Helpdesk cannot change accounts." in page

"""Fixtures for the staff queue's tests: a signed-in Helpdesk user."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from portal.accounts.models import Profile
from portal.accounts.models import User
from tests.helpers import sign_in_as


@pytest.fixture
def staff(client: FlaskClient) -> User:
    """``client`` logged in as a Helpdesk user."""
    return sign_in_as(client, Profile.HELPDESK)

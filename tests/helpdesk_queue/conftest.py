"""Fixtures for the staff queue's tests: a signed-in Helpdesk user."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from portal.accounts.models import Profile
from portal.accounts.models import User
from tests.factories import login
from tests.factories import make_user


def sign_in_as(client: FlaskClient, profile: Profile) -> User:
    user = make_user(profile=profile)
    door = "console" if profile is Profile.ADMINISTRATOR else "portal"
    response = login(client, user.user_id, door=door)
    assert response.status_code == 302
    assert "/login" not in response.headers["Location"]
    return user


@pytest.fixture
def staff(client: FlaskClient) -> User:
    """``client`` logged in as a Helpdesk user."""
    return sign_in_as(client, Profile.HELPDESK)

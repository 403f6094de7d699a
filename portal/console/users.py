"""Users of the organisation: list, inline Enabled, create, a user's page."""

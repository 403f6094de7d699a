"""The newsletter: double opt-in sign-up, unsubscribe without login, CSV for the Portal team."""

"""Access reviews (docs/rules.md §4, "Access review"): an Administrator confirms, user by user,
who still needs access and removes the rest; the signed-off record is kept for the firm's
auditors.  ``models`` holds the tables, ``service`` the operations (every removal goes through
``accounts.management.set_enabled``, so R4's refusals apply), ``export`` the CSV."""

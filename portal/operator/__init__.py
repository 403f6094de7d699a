"""The Portal team's area (``/operator/``): organisations, a firm's first Administrator, any
user across organisations, re-enabling and extending the expiry date (docs/rules.md §1, §5).

The blueprint is defined here; ``views.py`` and ``user_actions.py`` hold its thin views and
``user_page.py`` what both render a user's page with; ``organisations.py`` and ``directory.py`` the
set-based reads; ``actions.py`` the account actions taken for a helpdesk request; ``forms.py``
the forms.  Every change goes through ``portal.accounts.service`` / ``management`` (and so
through ``rules``), and is audited.
"""

from flask import Blueprint

bp = Blueprint("operator", __name__, url_prefix="/operator")

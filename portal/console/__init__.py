"""The Admin Console: Administrators manage the users of their own organisation.

Routes live in ``dashboard.py``, ``users.py`` and ``audit.py``, which the factory imports.
"""

from flask import Blueprint

bp = Blueprint("console", __name__, url_prefix="/console")

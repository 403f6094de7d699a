"""Ids in URLs: ``<int:pk>`` bounded to what a table can hold.

PostgreSQL's ``integer`` ends at 2**31 - 1; Werkzeug's ``int`` converter takes any size, and a
bigger number made the query fail (a 500).  Bounded, such a URL matches no route: a 404, as for
any id nothing has.  (Text fields refuse NUL and other control characters in their forms,
with a message by the field: ``portal.accounts.forms.printable`` and the helpdesk forms.)
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.routing import IntegerConverter

#: The largest id any table can hold (PostgreSQL ``integer``; SQLite accepts more, never gets it).
MAX_ID = 2**31 - 1


class IdConverter(IntegerConverter):
    """``<int:…>`` bounded to the ids a table can hold: a larger number matches no route."""

    def __init__(self, url_map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(url_map, *args, **kwargs)


def init_app(app: Flask) -> None:
    """Call before any blueprint is registered (the converter applies to rules as they are
    added)."""
    app.url_map.converters["int"] = IdConverter

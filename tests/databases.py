"""A new, empty database of the same kind as a test's, for restores and deploy walks."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.engine import make_url

from portal.config import normalise_database_url


@contextlib.contextmanager
def fresh_database(like: str, folder: Path) -> Iterator[str]:
    """A SQLite path in ``folder`` that does not exist yet, or a PostgreSQL database
    ``portal_ops_install_<random>`` on ``like``'s server, dropped at the end."""
    url = make_url(like)
    if url.get_backend_name() == "sqlite":
        yield f"sqlite:///{folder / f'fresh-{uuid.uuid4().hex[:8]}.sqlite'}"
        return
    name = f"portal_ops_install_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalise_database_url(like), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

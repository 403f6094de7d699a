"""Migration 0006_site: the newsletter table matches the model, and it goes down and up."""

from __future__ import annotations

import flask_migrate
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from sqlalchemy import inspect

from portal.extensions import db

TABLE = "newsletter_subscribers"


def _diffs_for_table(app: Flask) -> list[object]:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, db.metadata)
    return [d for d in diffs if TABLE in repr(d)]


def test_the_newsletter_table_matches_the_model(app: Flask) -> None:
    assert _diffs_for_table(app) == []


def test_0006_goes_down_and_up(app: Flask) -> None:
    if db.engine.dialect.name != "sqlite":  # the shared PostgreSQL database stays as it is
        return
    db.session.remove()
    flask_migrate.downgrade(revision="0004_helpdesk")
    assert TABLE not in inspect(db.engine).get_table_names()
    flask_migrate.upgrade()
    assert TABLE in inspect(db.engine).get_table_names()
    assert _diffs_for_table(app) == []

"""``portal backup [PATH]`` and ``portal restore PATH``: the whole database, SQLite or
PostgreSQL (docs/deploy.md, Backups)."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from sqlalchemy import text

from portal import clock
from portal.backup import postgres
from portal.backup import sqlite
from portal.backup.files import BackupError
from portal.extensions import db


def _default_path(suffix: str) -> Path:
    stamp = clock.now().strftime("%Y%m%d-%H%M%S")
    folder = Path(current_app.instance_path) / "backups"
    folder.mkdir(parents=True, mode=0o700, exist_ok=True)
    return folder / f"portal-{stamp}{suffix}"


def _sqlite_file() -> str:
    name = db.engine.url.database
    if not name or name == ":memory:":
        raise click.ClickException("The database is in memory: there is nothing to back up.")
    return name


@click.command("backup")
@click.argument("path", required=False, type=click.Path(path_type=Path, dir_okay=False))
def backup(path: Path | None) -> None:
    """Back up the whole database to PATH, mode 0600 (it holds password hashes).

    SQLite: the online backup API (consistent while the app runs).  PostgreSQL: pg_dump in
    custom format of the database DATABASE_URL names (pg_dump must be on the PATH).  Default
    PATH: instance/backups/portal-<UTC time>.sqlite or .dump.
    """
    engine = db.engine
    db.session.remove()
    try:
        if engine.dialect.name == "sqlite":
            source = _sqlite_file()
            target = path or _default_path(".sqlite")
            pages = sqlite.backup(source, target)
            detail = f"{pages} pages"
        else:
            source = engine.url.render_as_string(hide_password=True)
            target = path or _default_path(".dump")
            postgres.backup(engine.url, target)
            detail = "pg_dump custom format"
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    size = target.stat().st_size / 1_048_576
    click.echo(f"Backed up {source} to {target} ({detail}, {size:.1f} MiB).")


def _schema_version() -> str:
    from alembic.migration import MigrationContext

    with db.engine.connect() as conn:
        heads = MigrationContext.configure(conn).get_current_heads()
    return ", ".join(heads) or "none"


@click.command("restore")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--force", is_flag=True, help="Replace a database that already has tables.")
def restore(path: Path, force: bool) -> None:
    """Restore a backup made by `portal backup` into the configured database.

    The database must be empty (a new SQLite file, or a new PostgreSQL database): a database
    with tables is refused unless --force, which replaces everything in it.  Stop the web and
    scheduler processes first.  Then run `portal db upgrade` if the backup is older than the code.
    """
    engine = db.engine
    db.session.remove()
    try:
        if engine.dialect.name == "sqlite":
            target = _sqlite_file()
            tables = sqlite.table_names(target)
        else:
            target = engine.url.render_as_string(hide_password=True)
            tables = postgres.table_names(engine)
        if tables and not force:
            raise click.ClickException(
                f"{target} is not empty ({len(tables)} tables): restore into a new database, "
                "or add --force to replace everything in it."
            )
        engine.dispose()
        if engine.dialect.name == "sqlite":
            sqlite.restore(path, target)
        else:
            if tables:
                postgres.empty_schema(engine)
            postgres.restore(engine.url, path)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    engine.dispose()
    version = _schema_version()
    with db.engine.connect() as conn:
        users = conn.execute(text("SELECT count(*) FROM users")).scalar_one()
    click.echo(f"Restored {path} into {target}: migration {version}, {users} users.")
    click.echo("If the code is newer than the backup, run: portal db upgrade")

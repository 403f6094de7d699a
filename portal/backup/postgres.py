"""PostgreSQL: ``pg_dump --format=custom`` of the database that ``DATABASE_URL`` names, and
``pg_restore`` into it.  The password goes through ``PGPASSWORD``, never the command line."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import IO

from sqlalchemy import Engine
from sqlalchemy import text
from sqlalchemy.engine import URL

from portal.backup.files import BackupError
from portal.backup.files import check_readable
from portal.backup.files import create_private

#: pg_restore options: objects belong to whoever restores (a database's owner need not be a
#: superuser), no GRANTs or COMMENTs (COMMENT ON EXTENSION needs the extension's owner), and the
#: first error stops a restore that is one transaction: all or nothing.
RESTORE_OPTIONS = (
    "--no-owner",
    "--no-privileges",
    "--no-comments",
    "--exit-on-error",
    "--single-transaction",
)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} is not on the PATH: install PostgreSQL's client tools "
            "(Debian: apt-get install postgresql-client), the same major version as the server."
        )
    return found


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """``url`` as a libpq URI without the password, and the environment that carries it."""
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _run(cmd: list[str], env: dict[str, str], what: str, stdout: IO[bytes] | None = None) -> None:
    """Run a PostgreSQL client tool (an absolute path from ``_tool``, arguments from settings)."""
    done = subprocess.run(  # noqa: S603
        cmd,
        env=env,
        stdout=stdout if stdout is not None else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip() or f"exit status {done.returncode}"
        raise BackupError(f"{what} failed: {message}")


def backup(url: URL, target: Path) -> None:
    """Dump the database at ``url`` to ``target`` (new, 0600) in pg_dump's custom format."""
    dsn, env = _libpq(url)
    pg_dump = _tool("pg_dump")
    fd = create_private(target)
    try:
        with os.fdopen(fd, "wb") as out:
            _run([pg_dump, "--format=custom", "--dbname", dsn], env, "pg_dump", stdout=out)
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def table_names(engine: Engine) -> list[str]:
    """The tables in every schema but PostgreSQL's own."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT schemaname || '.' || tablename FROM pg_catalog.pg_tables "
                "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
            )
        ).all()
    return [row[0] for row in rows]


def empty_schema(engine: Engine) -> None:
    """Drop and recreate the current schema (tables, functions, extensions in it)."""
    with engine.begin() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        quoted = conn.dialect.identifier_preparer.quote(schema)
        conn.execute(text(f"DROP SCHEMA {quoted} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {quoted}"))


def restore(url: URL, source: Path) -> None:
    """Restore the custom-format dump ``source`` into the (empty) database at ``url``."""
    check_readable(source)
    dsn, env = _libpq(url)
    pg_restore = _tool("pg_restore")
    _run([pg_restore, "--list", str(source)], env, f"Reading {source}")
    _run([pg_restore, *RESTORE_OPTIONS, "--dbname", dsn, str(source)], env, "pg_restore")

"""SQLite: the online backup API copies a consistent database while the app runs (copying the
file is not consistent in WAL mode); restore copies a backup into the configured file."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from portal.backup.files import BackupError
from portal.backup.files import check_readable
from portal.backup.files import create_private

PAGES_PER_STEP = 1024


def backup(source: str, target: Path) -> int:
    """Copy the database file ``source`` to ``target`` (new, 0600); returns its page count."""
    os.close(create_private(target))
    try:
        with sqlite3.connect(source) as src:
            dst = sqlite3.connect(target)
            try:
                src.backup(dst, pages=PAGES_PER_STEP)
            finally:
                dst.close()
            return int(src.execute("PRAGMA page_count").fetchone()[0])
    except sqlite3.Error as exc:
        target.unlink(missing_ok=True)
        raise BackupError(f"Backup failed: {exc}") from None


def table_names(path: str) -> list[str]:
    """The user tables of the database file at ``path`` (none when it does not exist yet)."""
    if not Path(path).exists():
        return []
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
    return [row[0] for row in rows]


def _check_backup(source: Path) -> None:
    check_readable(source)
    try:
        with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as conn:
            ok = conn.execute("PRAGMA quick_check").fetchone()
            has_version = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
            ).fetchone()
    except sqlite3.Error as exc:
        raise BackupError(f"{source} is not a SQLite backup: {exc}") from None
    if ok != ("ok",):
        raise BackupError(f"{source} is damaged (PRAGMA quick_check: {ok[0]}).")
    if has_version is None:
        raise BackupError(f"{source} is not a backup of this application (no alembic_version).")


def restore(source: Path, target: str) -> int:
    """Copy the backup ``source`` over the database file ``target``; returns its page count.

    The caller has checked that ``target`` is empty or that overwriting it was asked for.
    """
    _check_backup(source)
    created = not Path(target).exists()
    if created:
        os.close(create_private(Path(target)))
    try:
        with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src:
            dst = sqlite3.connect(target)
            try:
                src.backup(dst, pages=PAGES_PER_STEP)
                return int(dst.execute("PRAGMA page_count").fetchone()[0])
            finally:
                dst.close()
    except sqlite3.Error as exc:
        if created:
            Path(target).unlink(missing_ok=True)
        raise BackupError(f"Restore failed: {exc}") from None

"""Files only their owner may read: the instance folder (0700) and the SQLite database (0600).

The database holds password hashes and personal data, and ``instance/`` holds the secret key:
neither is ever created readable by other accounts on the machine, and an older one found
readable is tightened (and logged), so a deployment made before this check is mended too.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

FOLDER_MODE = stat.S_IRWXU  # 0700
FILE_MODE = stat.S_IRUSR | stat.S_IWUSR  # 0600


def _tighten(path: Path, mode: int) -> None:
    """Remove group and other permissions from ``path`` when it is ours and has any."""
    info = path.stat()
    if info.st_uid != os.getuid() or not stat.S_IMODE(info.st_mode) & (stat.S_IRWXG | stat.S_IRWXO):
        return
    os.chmod(path, mode)
    log.info("%s was readable by other accounts: now mode %o", path, mode)


def private_folder(path: Path) -> Path:
    """Create ``path`` (and missing parents) mode 0700, or tighten the existing one."""
    if not path.is_dir():
        path.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        os.chmod(path, FOLDER_MODE)  # mkdir's mode is reduced by the umask, never widened
    else:
        _tighten(path, FOLDER_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create an empty ``path`` mode 0600 if it is missing, or tighten the existing one.

    SQLite takes an empty file for a new database, and gives its -wal and -shm files the
    database file's mode.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        _tighten(path, FILE_MODE)
    else:
        os.close(fd)
    return path


def sqlite_database_path(database: str | None) -> Path | None:
    """The file of a SQLite URL's database part, or None for an in-memory or URI database."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)

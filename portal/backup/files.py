"""The backup file itself: created 0600, never over an existing file."""

from __future__ import annotations

import os
from pathlib import Path


class BackupError(RuntimeError):
    """A backup or restore could not be done; the message says why and what to do."""


def create_private(path: Path) -> int:
    """Create ``path`` (mode 0600) and return its descriptor; refuse an existing file."""
    if path.exists():
        raise BackupError(f"{path} already exists: choose another path.")
    if not path.parent.is_dir():
        raise BackupError(f"The folder {path.parent} does not exist.")
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


def check_readable(path: Path) -> None:
    if not path.is_file():
        raise BackupError(f"{path} is not a file.")
    if not os.access(path, os.R_OK):
        raise BackupError(f"{path} cannot be read by this user.")

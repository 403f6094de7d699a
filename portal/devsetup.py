"""``python -m portal.devsetup``: create ``instance/config.py`` with a SECRET_KEY, once.

``make run`` calls this, so the key is generated on the first run and reused afterwards
(sessions survive restarts).  The file is mode 0600, its folder 0700, and both git-ignored.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from portal.config import instance_path
from portal.private_files import private_folder


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable by its owner only from the first byte (0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)  # an existing file keeps its mode otherwise


def ensure_instance_config() -> bool:
    """Write instance/config.py if it is missing; True when it was created."""
    folder = private_folder(instance_path())
    path = folder / "config.py"
    if path.exists():
        return False
    write_private(
        path,
        "# Local settings for this machine (git-ignored). See README.md, Configuration.\n"
        f"SECRET_KEY = {secrets.token_hex(32)!r}\n",
    )
    return True


if __name__ == "__main__":
    if ensure_instance_config():
        print(f"Created {instance_path() / 'config.py'} with a new SECRET_KEY.")

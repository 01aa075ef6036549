"""Data files readable by the service's own user only: files 0600, folders 0700.

The SQLite databases (and their ``-wal``/``-shm`` files), blob folders and
upload files, signing keys and the webhook secret key hold credentials or
private images; no other local user may read them. Both services' commands
set the process umask to 0077 first (`private_umask`), so everything they and
SQLite create is private; `tighten` also repairs a data folder made by an
older version (0644 files, 0755 folders) when a service starts.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["FILE_MODE", "FOLDER_MODE", "UMASK", "private_umask", "tighten"]

UMASK = 0o077
FILE_MODE = 0o600
FOLDER_MODE = 0o700


def private_umask() -> None:
    """New files 0600 and folders 0700 from here on, in this process and its children."""
    os.umask(UMASK)


def tighten(*paths: Path) -> None:
    """Take group and other permissions off each existing path that we own.

    Only the top of a folder and the files named are changed (blob folders
    can hold millions of files: new ones are private through the umask).
    Paths owned by someone else, or missing, are left alone.
    """
    for path in paths:
        try:
            info = path.lstat()
        except OSError:
            continue
        if info.st_uid != os.geteuid() or stat.S_ISLNK(info.st_mode):
            continue
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            try:
                path.chmod(mode & ~0o077)
            except OSError:
                continue

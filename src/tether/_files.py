"""Private state files: created readable by their owner only (0600, folders 0700).

Used wherever tether writes state that holds run data (the engine's database, spans, the
vault, keys). Core module: imports nothing of tether.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def private_folder(path: str | Path) -> Path:
    """Create `path` (and missing parents) as 0700; tighten it to 0700 if it exists and is ours."""
    folder = Path(path)
    folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    _tighten(folder, FOLDER_MODE)
    return folder


def private_file(path: str | Path) -> Path:
    """Create `path` empty as 0600 if missing (its folder too); tighten it to 0600 if it is ours.

    SQLite gives a database's `-wal`, `-shm` and `-journal` files the mode of the database
    file, so creating the database file this way first keeps them private as well.
    """
    file = Path(path)
    if not file.parent.exists():
        private_folder(file.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    _tighten(file, FILE_MODE)
    return file


def tighten(path: str | Path) -> None:
    """Make an existing state file 0600 or folder 0700 (when owned by this user); nothing if missing."""
    p = Path(path)
    with contextlib.suppress(OSError):
        _tighten(p, FOLDER_MODE if p.is_dir() else FILE_MODE)


def _tighten(path: Path, mode: int) -> None:
    st = path.stat()
    if st.st_uid == os.getuid() and st.st_mode & 0o777 != mode:
        os.chmod(path, mode)

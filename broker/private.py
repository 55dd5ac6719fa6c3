"""Private files: the data dir and its ``nonces/`` dir 0700, the event database and its WAL and
SHM files 0600.

Each is created with its mode (never by changing the umask: the server runs threads), or, when it
already exists with a wider mode, tightened (every bit beyond 0700 / 0600 removed, none added), and
that is logged once, naming the path and the old mode. SQLite creates a database's ``-wal`` and ``-shm``
files with the database file's own permission bits, whatever the umask, so a 0600 database keeps
them 0600; only leftovers from an earlier, wider database need tightening.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from .paths import nonce_store_dir

__all__ = ["PRIVATE_DIR", "PRIVATE_FILE", "private_data_dir", "private_dir", "private_file"]

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
_log = logging.getLogger(__name__)


def private_dir(path: Path) -> Path:
    """``path`` as a directory only its owner can use: created 0700 (missing parents as usual),
    or tightened. Raises ``OSError``."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    _tighten(path, PRIVATE_DIR)
    return path


def private_file(path: Path, *, create: bool = True) -> None:
    """``path`` as a file only its owner can read: created empty 0600 when missing and ``create``
    (else left missing), tightened when it exists. Raises ``OSError``."""
    if create:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE)
        except FileExistsError:
            pass
        else:
            os.close(fd)
            return
    if path.is_file():  # not a directory or a device: SQLite refuses those with their name
        _tighten(path, PRIVATE_FILE)


def private_data_dir(data_dir: Path) -> None:
    """The data dir and its nonce dir, private (created or tightened). Raises ``OSError``."""
    private_dir(data_dir)
    private_dir(nonce_store_dir(data_dir))


def _tighten(path: Path, private: int) -> None:
    old = stat.S_IMODE(path.stat().st_mode)
    if stat.S_ISDIR(path.stat().st_mode) and old & (stat.S_ISVTX | stat.S_IWOTH):
        # a shared folder (/tmp, a team's drop box): narrowing it would break it for everyone
        raise PermissionError(
            f"{path} is a shared folder (mode {old:04o}), not one of krakenwatch's own; set "
            f"KRAKENWATCH_DATA_DIR to a folder inside it, e.g. {path / 'krakenwatch'}"
        )
    new = old & private
    if new != old:
        os.chmod(path, new)
        _log.warning("tightened %s from %04o to %04o", path, old, new)

"""Where krakenwatch keeps its state (nonce store, event database)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from .errors import ConfigurationError

DATA_DIR_VARIABLE = "KRAKENWATCH_DATA_DIR"
#: ``0`` skips syncing the nonce record to disk before each request (faster, not crash-proof)
NONCE_SYNC_VARIABLE = "KRAKENWATCH_NONCE_SYNC"


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$KRAKENWATCH_DATA_DIR``, else ``$XDG_DATA_HOME/krakenwatch``, else ``~/.local/share/krakenwatch``."""
    env = os.environ if environ is None else environ
    explicit = env.get(DATA_DIR_VARIABLE, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    xdg = env.get("XDG_DATA_HOME", "").strip()
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "krakenwatch"


def nonce_sync_default(environ: Mapping[str, str] | None = None) -> bool:
    """``$KRAKENWATCH_NONCE_SYNC``: on unless set to 0/false/no/off.

    Raises :class:`~broker.errors.ConfigurationError` naming the variable for any other value.
    """
    env = os.environ if environ is None else environ
    raw = env.get(NONCE_SYNC_VARIABLE, "").strip().lower()
    if raw in ("", "1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(
        f"{NONCE_SYNC_VARIABLE}: {raw!r} is not a boolean (use 1 or 0)",
        variable=NONCE_SYNC_VARIABLE,
    )


def nonce_store_dir(data_dir: Path) -> Path:
    """The nonce store lives in ``<data dir>/nonces``, shared by every process on the host."""
    return data_dir / "nonces"

"""Where krakenwatch keeps its state (nonce store, event database)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

DATA_DIR_VARIABLE = "KRAKENWATCH_DATA_DIR"


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$KRAKENWATCH_DATA_DIR``, else ``$XDG_DATA_HOME/krakenwatch``, else ``~/.local/share/krakenwatch``."""
    env = os.environ if environ is None else environ
    explicit = env.get(DATA_DIR_VARIABLE, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    xdg = env.get("XDG_DATA_HOME", "").strip()
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "krakenwatch"


def nonce_store_dir(data_dir: Path) -> Path:
    """The nonce store lives in ``<data dir>/nonces``, shared by every process on the host."""
    return data_dir / "nonces"

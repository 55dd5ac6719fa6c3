"""Where krakenwatch keeps its state (nonce store, event database), and which Kraken it talks to:
the defaults a client reads from the environment."""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

from .errors import ConfigurationError

DEFAULT_API_URL = "https://api.kraken.com"
API_URL_VARIABLE = "KRAKEN_API_URL"
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


def parse_api_url(raw: str) -> str:
    """A Kraken base URL as given (``http(s)://host[:port][/path]``, no trailing slash);
    :class:`~broker.errors.ConfigurationError` naming ``KRAKEN_API_URL`` otherwise. Never a
    fallback: a typo must not send a key's traffic to another Kraken than the one meant."""
    text = raw.strip()
    parsed = urllib.parse.urlsplit(text)
    try:
        port_ok = parsed.port is None or parsed.port > 0
    except ValueError:
        port_ok = False
    if (
        parsed.scheme not in ("http", "https")
        or not parsed.hostname
        or not port_ok
        or parsed.query
        or parsed.fragment
        or parsed.username is not None
        or any(c.isspace() for c in text)
    ):
        raise ConfigurationError(
            f"{API_URL_VARIABLE}: {text!r} is not an http(s) base URL like {DEFAULT_API_URL} "
            "(nothing is sent anywhere until it is fixed)",
            variable=API_URL_VARIABLE,
        )
    return text.rstrip("/")


def api_url_default(environ: Mapping[str, str] | None = None) -> str:
    """``$KRAKEN_API_URL`` (checked with :func:`parse_api_url`; set but empty is an error too),
    else Kraken's own."""
    env = os.environ if environ is None else environ
    raw = env.get(API_URL_VARIABLE)
    if raw is None:
        return DEFAULT_API_URL
    if not raw.strip():
        raise ConfigurationError(
            f"{API_URL_VARIABLE}: is empty: give it a value, or remove it for {DEFAULT_API_URL} "
            "(nothing is sent anywhere until it is fixed)",
            variable=API_URL_VARIABLE,
        )
    return parse_api_url(raw)

"""Where krakenwatch keeps its state (nonce store, event database), and which Kraken it talks to:
the defaults a client reads from the environment."""

from __future__ import annotations

import functools
import os
import re
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


#: any whitespace character (what ``str.isspace`` tells)
_BLANK = re.compile(r"\s")


@functools.lru_cache(maxsize=64)
def _well_formed(text: str, schemes: tuple[str, ...]) -> bool:
    """``scheme://host[:port][/path]`` with one of ``schemes``: no query, fragment, user info or
    blank anywhere (a URL that carries keys' traffic or a token is taken as given, or refused).
    Remembered per text: every account's client checks the same URL."""
    parsed = urllib.parse.urlsplit(text)
    try:
        port_ok = parsed.port is None or parsed.port > 0
    except ValueError:
        port_ok = False
    return (
        parsed.scheme in schemes
        and bool(parsed.hostname)
        and port_ok
        and not parsed.query
        and not parsed.fragment
        and "?" not in text
        and "#" not in text
        and parsed.username is None
        and not _BLANK.search(text)
    )


def parse_api_url(raw: str) -> str:
    """A Kraken base URL as given (``http(s)://host[:port][/path]``, no trailing slash);
    :class:`~broker.errors.ConfigurationError` naming ``KRAKEN_API_URL`` otherwise. Never a
    fallback: a typo must not send a key's traffic to another Kraken than the one meant."""
    text = raw.strip()
    if not _well_formed(text, ("http", "https")):
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


DEFAULT_WS_AUTH_URL = "wss://ws-auth.kraken.com/v2"
WS_URL_VARIABLE = "KRAKEN_WS_AUTH_URL"


def parse_ws_url(raw: str) -> str:
    """A private WebSocket URL as given (``ws(s)://host[:port][/path]``);
    :class:`~broker.errors.ConfigurationError` naming ``KRAKEN_WS_AUTH_URL`` otherwise (no query,
    fragment, user info or blanks: a token is sent there, so nothing is guessed)."""
    text = raw.strip()
    if not _well_formed(text, ("ws", "wss")):
        raise ConfigurationError(
            f"{WS_URL_VARIABLE}: {text!r} is not a ws(s) URL like {DEFAULT_WS_AUTH_URL} "
            "(no token is fetched or sent until it is fixed)",
            variable=WS_URL_VARIABLE,
        )
    return text


def _krakens_own(url: str) -> bool:
    """``wss://`` on ``kraken.com`` or one of its hosts."""
    parsed = urllib.parse.urlsplit(url)
    host = (parsed.hostname or "").lower()
    return parsed.scheme == "wss" and (host == "kraken.com" or host.endswith(".kraken.com"))


def ws_url_default(environ: Mapping[str, str] | None = None, api_url: str | None = None) -> str:
    """Where a private WebSocket stream connects: ``$KRAKEN_WS_AUTH_URL`` (checked with
    :func:`parse_ws_url`; set but empty is an error), else Kraken's own
    :data:`DEFAULT_WS_AUTH_URL`, but only when the REST base URL in use (``api_url``, else
    ``$KRAKEN_API_URL``'s) is Kraken's own :data:`DEFAULT_API_URL`.

    Any other REST URL (a simulator, a gateway, a proxy) raises
    :class:`~broker.errors.ConfigurationError` naming ``KRAKEN_WS_AUTH_URL``: a token fetched
    through something other than Kraken is never sent to the real Kraken by default, and a typo
    never reaches it."""
    env = os.environ if environ is None else environ
    raw = env.get(WS_URL_VARIABLE)
    rest = api_url_default(env) if api_url is None else parse_api_url(api_url)
    if raw is not None:
        if not raw.strip():
            raise ConfigurationError(
                f"{WS_URL_VARIABLE}: is empty: give it a value, or remove it to use "
                f"{DEFAULT_WS_AUTH_URL} with Kraken's own REST API (no token is fetched or sent "
                "until it is fixed)",
                variable=WS_URL_VARIABLE,
            )
        url = parse_ws_url(raw)
        if rest == DEFAULT_API_URL and not _krakens_own(url):
            # a token of a real key, good for trading: never to a typo, never in clear text
            raise ConfigurationError(
                f"{WS_URL_VARIABLE}: {url!r} is not a wss:// URL of kraken.com, and "
                f"{API_URL_VARIABLE} is Kraken's own: a real key's token goes only to Kraken "
                f"(remove it for {DEFAULT_WS_AUTH_URL})",
                variable=WS_URL_VARIABLE,
            )
        return url
    if rest == DEFAULT_API_URL:
        return DEFAULT_WS_AUTH_URL
    raise ConfigurationError(
        f"{WS_URL_VARIABLE}: not set, and {API_URL_VARIABLE} points elsewhere than "
        f"{DEFAULT_API_URL} ({rest!r}): set {WS_URL_VARIABLE} to the WebSocket URL that belongs "
        f"to it (a token from there is never sent to {DEFAULT_WS_AUTH_URL} by default)",
        variable=WS_URL_VARIABLE,
    )

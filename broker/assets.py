"""Kraken's two spellings of an asset: REST (``XXBT``, ``ZUSD``, ``XETH``) and WebSocket v2
(``BTC``, ``USD``, ``ETH``).

REST ``Balance`` keeps the legacy four-letter names of the assets Kraken listed first (an ``X``
before a crypto asset, a ``Z`` before a fiat one, ``XBT`` for bitcoin, ``XDG`` for dogecoin);
WebSocket v2 uses the plain ticker everywhere. Newer assets (``USDT``, ``SOL``, ``DOT``...) are
spelled the same in both. Pure data and two functions: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["rest_asset", "ws_asset"]

#: the legacy REST names and their WebSocket v2 spelling
_LEGACY: dict[str, str] = {
    "XXBT": "BTC",
    "XETH": "ETH",
    "XLTC": "LTC",
    "XXRP": "XRP",
    "XXLM": "XLM",
    "XXMR": "XMR",
    "XZEC": "ZEC",
    "XETC": "ETC",
    "XMLN": "MLN",
    "XREP": "REP",
    "XXDG": "DOGE",
    "ZUSD": "USD",
    "ZEUR": "EUR",
    "ZGBP": "GBP",
    "ZJPY": "JPY",
    "ZCAD": "CAD",
    "ZAUD": "AUD",
}
#: short spellings REST also uses (pairs' ``altname``), for completeness
_ALIASES: dict[str, str] = {"XBT": "BTC", "XDG": "DOGE"}
_REST: dict[str, str] = {ws: rest for rest, ws in _LEGACY.items()}


def ws_asset(rest_name: str) -> str:
    """The WebSocket v2 name of a REST asset name (``XXBT`` -> ``BTC``; ``USDT`` unchanged;
    a staking or earn suffix such as ``XETH.S`` keeps its suffix: ``ETH.S``)."""
    base, dot, suffix = rest_name.partition(".")
    name = _LEGACY.get(base) or _ALIASES.get(base) or base
    return f"{name}{dot}{suffix}"


def rest_asset(ws_name: str, known: Iterable[str] = ()) -> str:
    """The REST name of a WebSocket v2 asset name (``BTC`` -> ``XXBT``): one of ``known`` (the
    names REST ``Balance`` already answered) when one of them is spelled ``ws_name`` over the
    WebSocket, else the legacy table's, else ``ws_name`` itself."""
    for name in known:
        if ws_asset(name) == ws_name:
            return name
    base, dot, suffix = ws_name.partition(".")
    return f"{_REST.get(base, base)}{dot}{suffix}"

"""One name per pair, however a bot or the stream spells it (``XBTUSD``, ``XXBTZUSD``, ``BTC/USD``,
``xbt/usd``): the trading counter is per pair, so two spellings must share one counter.

The names come from Kraken's ``AssetPairs`` (its key, ``altname`` and ``wsname``); until they are
known, or for a pair Kraken does not list, a name is upper-cased without its slash.
"""

from __future__ import annotations

import json
import threading

from broker.assets import ws_asset

__all__ = ["PairNames"]


def _plain(name: str) -> str:
    return name.strip().upper().replace("/", "")


class PairNames:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: dict[str, str] = {}

    @property
    def loaded(self) -> bool:
        return bool(self._names)

    def load(self, body: bytes) -> int:
        """Learn the names of an ``AssetPairs`` answer; how many pairs it listed (0: none, or
        not an answer that can be read)."""
        try:
            result = json.loads(body).get("result")
        except (ValueError, AttributeError):
            return 0
        if not isinstance(result, dict):
            return 0
        names: dict[str, str] = {}
        for key, info in result.items():
            names[_plain(key)] = key
            if isinstance(info, dict):
                for other in (info.get("altname"), info.get("wsname")):
                    if isinstance(other, str) and other:
                        names.setdefault(_plain(other), key)
                wsname = info.get("wsname")
                if isinstance(wsname, str) and wsname.count("/") == 1:  # v2 spells XBT as BTC
                    base, quote = wsname.split("/")
                    names.setdefault(_plain(f"{ws_asset(base)}/{ws_asset(quote)}"), key)
        with self._lock:
            self._names = names
        return len(result)

    def canonical(self, name: str) -> str:
        plain = _plain(name)
        with self._lock:
            return self._names.get(plain, plain)

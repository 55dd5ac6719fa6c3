"""Two bots grinding one pair: unmodified ``krakenex`` bots on one key, each placing its share of
small limit orders far below the price and cancelling each one at once (a young order: +1 then
+8 on Kraken's per-pair trading counter), until exactly ``orders`` orders are placed. Straight to
Kraken (the simulator's ``grind.toml``) they pass the counter's threshold and get
``EOrder:Rate limit exceeded``; through a gateway that models the counter they should not.

* Each bot is its own ``krakenex.API(key, secret)`` whose ``uri`` is ``base_url`` (it talks to
  nothing else), in its own thread. An order or a cancel refused for a rate limit (or another
  passing trouble: an invalid nonce, ``EService:*``, a dropped connection, any refusal the gateway
  made itself) is sent again after ``retry_s``; a cancel of an order Kraken no longer knows, or
  any other error, is given up (counted). ``deadline_s`` bounds the whole run.
* Nonces: krakenex's own are milliseconds with no guard (two threads can draw the same). Every
  bot here draws from one counter of microseconds, seeded from the clock and strictly increasing
  across the bots, set as the bot's ``_nonce``. Two bots' requests may still reach Kraken out of
  order: a key straight at the simulator needs a ``nonce_window`` (``grind.toml`` has 5 s).
* Who refused: an answer carrying ``X-Krakenwatch-Gateway: answered`` was made by the gateway
  (``refused_by_gateway``); an ``EOrder:Rate limit exceeded`` without it came from Kraken
  (``rate_limited_by_kraken``); every other error is counted by its code (or exception type) in
  ``other_errors``.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import requests

__all__ = ["GATEWAY_HEADER", "RATE_LIMIT", "GrindResult", "grind"]

GATEWAY_HEADER = "X-Krakenwatch-Gateway"
RATE_LIMIT = "EOrder:Rate limit exceeded"
#: errors worth sending the same call again for (prefixes)
_RETRYABLE = (
    RATE_LIMIT,
    "EAPI:Rate limit exceeded",
    "EAPI:Invalid nonce",
    "EService:",
    "EGeneral:Temporary lockout",
    "EGeneral:Internal error",
)


@dataclass(frozen=True)
class GrindResult:
    """What a :func:`grind` did: orders placed and cancelled, its run time, and who refused."""

    placed: int
    cancelled: int
    elapsed_s: float
    rate_limited_by_kraken: int
    refused_by_gateway: int
    #: every other error answer (or exception type) -> how many times
    other_errors: dict[str, int] = field(default_factory=dict)


class _Tally:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.placed = self.cancelled = self.by_kraken = self.by_gateway = 0
        self.errors: Counter[str] = Counter()

    def count(self, what: str) -> None:
        with self._lock:
            setattr(self, what, getattr(self, what) + 1)

    def refusal(self, error: str, by_gateway: bool) -> None:
        with self._lock:
            if by_gateway:
                self.by_gateway += 1
            elif error == RATE_LIMIT:
                self.by_kraken += 1
            else:
                self.errors[error] += 1


def _nonce_source() -> Any:
    """A thread-safe, strictly increasing microsecond nonce shared by every bot."""
    counter = itertools.count(time.time_ns() // 1000)
    lock = threading.Lock()

    def nonce() -> int:
        with lock:
            return next(counter)

    return nonce


def _bot_api(key: str, secret: str, base_url: str, nonce: Any) -> Any:
    import krakenex

    api = krakenex.API(key, secret)
    api.uri = base_url.rstrip("/")
    api._nonce = nonce  # one counter for every bot (see the module docstring)
    return api


def _order_fields(api: Any, pair: str) -> dict[str, str]:
    """A buy limit order of the pair's minimum volume at half its last price."""
    info = api.query_public("AssetPairs", {"pair": pair})
    ticker = api.query_public("Ticker", {"pair": pair})
    if info.get("error") or ticker.get("error"):
        raise ValueError(f"pair {pair!r}: {info.get('error') or ticker.get('error')}")
    (details,) = info["result"].values()
    (prices,) = ticker["result"].values()
    step = Decimal(1).scaleb(-int(details["pair_decimals"]))
    price = max((Decimal(prices["c"][0]) / 2).quantize(step), step)
    volume = details["ordermin"]
    return {
        "pair": pair,
        "type": "buy",
        "ordertype": "limit",
        "volume": volume,
        "price": f"{price:f}",
    }


class _Bot:
    def __init__(self, api: Any, tally: _Tally, retry_s: float, deadline: float) -> None:
        self.api = api
        self.tally = tally
        self.retry_s = retry_s
        self.deadline = deadline

    def run(self, share: int, order: dict[str, str], cancel: bool) -> None:
        for _ in range(share):
            placed = self.call("AddOrder", order)
            if placed is None:
                return
            self.tally.count("placed")
            if cancel and self.call("CancelOrder", {"txid": placed["txid"][0]}) is not None:
                self.tally.count("cancelled")

    def call(self, method: str, data: dict[str, str]) -> dict[str, Any] | None:
        """The call's result, sent again while it is refused for a passing reason; ``None``
        when it is given up (or the deadline has passed)."""
        while time.monotonic() < self.deadline:
            try:
                reply = self.api.query_private(method, dict(data))  # krakenex adds the nonce
            except requests.RequestException as exc:  # no answer, or not HTTP 200
                error, by_gateway, retry = _failure(exc)
            else:
                errors = reply.get("error") or []
                if not errors:
                    return dict(reply.get("result") or {})
                error = str(errors[0])
                by_gateway = self.api.response.headers.get(GATEWAY_HEADER) == "answered"
                retry = by_gateway or error.startswith(_RETRYABLE)
            self.tally.refusal(error, by_gateway)
            if not retry:
                return None
            time.sleep(self.retry_s)
        return None


def _failure(exc: requests.RequestException) -> tuple[str, bool, bool]:
    """``(error, by the gateway, worth a retry)`` of a call that raised."""
    response = exc.response
    if response is None:
        return type(exc).__name__, False, True
    by_gateway = response.headers.get(GATEWAY_HEADER) == "answered"
    return f"HTTP {response.status_code}", by_gateway, True


def grind(
    base_url: str,
    key: str,
    secret: str,
    *,
    bots: int = 2,
    orders: int = 300,
    pair: str = "XBTUSD",
    cancel: bool = True,
    retry_s: float = 0.05,
    deadline_s: float = 300.0,
) -> GrindResult:
    """Run ``bots`` krakenex bots on ``key`` against ``base_url`` (the simulator or the gateway)
    until ``orders`` orders are placed (and each cancelled at once unless ``cancel=False``)."""
    if bots < 1 or orders < 0:
        raise ValueError("bots must be >= 1 and orders >= 0")
    nonce, tally = _nonce_source(), _Tally()
    started = time.monotonic()
    deadline = started + deadline_s
    apis = [_bot_api(key, secret, base_url, nonce) for _ in range(bots)]
    order = _order_fields(apis[0], pair)
    failures: list[BaseException] = []

    def work(api: Any, share: int) -> None:
        try:
            _Bot(api, tally, retry_s, deadline).run(share, order, cancel)
        except BaseException as exc:  # reported by grind() after every bot has stopped
            failures.append(exc)

    threads = [
        threading.Thread(target=work, args=(api, orders // bots + (i < orders % bots)))
        for i, api in enumerate(apis)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for api in apis:
        api.session.close()
    if failures:
        raise failures[0]
    return GrindResult(
        placed=tally.placed,
        cancelled=tally.cancelled,
        elapsed_s=time.monotonic() - started,
        rate_limited_by_kraken=tally.by_kraken,
        refused_by_gateway=tally.by_gateway,
        other_errors=dict(tally.errors),
    )

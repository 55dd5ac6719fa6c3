"""The :class:`~simulator.Simulator`'s Python API for orders and account streams, for tests (the
admin routes under ``/_sim/orders/`` and ``/_sim/streams/`` call the same methods). Keys are named
the way the rest of the API names them: by name (``"MASTER"``) or public key.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from .book import OrderDesk, OrderError
from .hub import StreamHub, StreamStats
from .state import SimState
from .stream import StreamServer

__all__ = ["AccountsApi"]


def _decimal(value: object, name: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{name} must be a decimal number, got {value!r}") from None
    if not number.is_finite() or number <= 0:
        raise ValueError(f"{name} must be above 0")
    return number


class AccountsApi:
    _state: SimState
    _desk: OrderDesk
    _hub: StreamHub
    _stream: StreamServer

    # ------------------------------------------------------------------ orders
    def place_order(
        self,
        key: str,
        pair: str,
        side: str,
        volume: str | Decimal | float,
        *,
        price: str | Decimal | float | None = None,
        ordertype: str = "limit",
        userref: int = 0,
    ) -> str:
        """Place an order like ``AddOrder`` (same checks, same counter, same events); its txid.
        Raises :class:`~simulator.book.OrderError` with Kraken's error (``EOrder:...``)."""
        ks = self._state.find(key)
        status = self._state.system_status
        if status == "maintenance":
            raise OrderError("EService:Unavailable")
        fields = {
            "pair": pair,
            "type": side,
            "ordertype": ordertype,
            "volume": f"{_decimal(volume, 'volume'):f}",
            "userref": str(userref),
        }
        if price is not None:
            fields["price"] = f"{_decimal(price, 'price'):f}"
        result = self._desk.add_order(ks, fields, status)
        if isinstance(result, str):
            raise OrderError(result)
        return str(result["txid"][0])

    def fill_order(self, key: str, txid: str, volume: str | Decimal | float | None = None) -> None:
        """Fill an open limit order at its price: ``volume`` of it, or (``None``) the rest."""
        amount = None if volume is None else _decimal(volume, "volume")
        self._desk.fill(self._state.find(key), txid, amount)

    def cancel_order(self, key: str, txid: str) -> dict[str, Any]:
        """Cancel like ``CancelOrder`` (the trading counter counts it): ``{"count": 1}``."""
        result = self._desk.cancel_order(self._state.find(key), txid)
        if isinstance(result, str):
            raise OrderError(result)
        return result

    def expire_order(self, key: str, txid: str) -> None:
        """The order expires (as one with an ``expiretm`` would): an ``expired`` event."""
        self._desk.expire_order(self._state.find(key), txid)

    def open_orders(self, key: str) -> dict[str, Any]:
        """The key's open orders as ``OpenOrders`` lists them (txid -> order)."""
        return dict(self._desk.open_orders(self._state.find(key))["open"])

    def order_status(self, key: str, txid: str) -> str | None:
        """``open``, ``closed``, ``canceled`` or ``expired``; ``None`` for an unknown order."""
        order = self._desk.order(self._state.find(key), txid)
        return None if order is None else order.status

    # ------------------------------------------------------------------ streams
    def stream_stats(self, key: str) -> StreamStats:
        """A snapshot of one key's WebSocket statistics."""
        return self._hub.stats(self._state.find(key).key)

    def wait_for_streams(
        self, key: str, predicate: Callable[[StreamStats], bool], timeout: float = 5.0
    ) -> StreamStats:
        """Block until ``predicate(stream_stats)`` holds for ``key``; ``TimeoutError`` if not."""
        return self._hub.wait_for(self._state.find(key).key, predicate, timeout)

    def _key_or_all(self, key: str | None) -> str | None:
        return None if key is None else self._state.find(key).key

    def drop_streams(self, key: str | None = None) -> int:
        """Cut the TCP connections of ``key``'s streams (``None``: every connection), no close
        frame; how many."""
        return self._stream.drop(self._key_or_all(key))

    def stall_streams(self, key: str | None = None) -> int:
        """Keep the open connections (of ``key``) open but send nothing until
        :meth:`resume_streams`; how many."""
        return self._stream.stall(self._key_or_all(key))

    def resume_streams(self) -> None:
        self._stream.resume()

    def invalidate_sessions(self, key: str | None = None) -> int:
        """Revoke ``key``'s tokens (``None``: every key's): its connections are told
        ``ESession:Invalid session`` and closed; how many connections."""
        return self._stream.invalidate(self._key_or_all(key))

    def refuse_streams(self, on: bool = True) -> None:
        """Answer new WebSocket handshakes with HTTP 503 (or, ``on=False``, accept them again)."""
        self._stream.refuse(on)

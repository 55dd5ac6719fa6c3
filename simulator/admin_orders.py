"""The ``/_sim/orders/`` and ``/_sim/streams/`` admin routes (see :mod:`simulator.admin` for the
list): the order book and the WebSocket faults over HTTP, for tests in another process and for
people poking at a running simulator. They call the :class:`~simulator.Simulator`'s Python API.
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import unquote

from .book import OrderError

__all__ = ["OrdersTarget", "handle_orders", "handle_streams"]

_STREAM_FAULTS = ("drop", "stall", "resume", "invalidate", "refuse")


class OrdersTarget(Protocol):
    def place_order(
        self,
        key: str,
        pair: str,
        side: str,
        volume: Any,
        *,
        price: Any = None,
        ordertype: str = "limit",
        userref: int = 0,
    ) -> str: ...

    def fill_order(self, key: str, txid: str, volume: Any = None) -> None: ...

    def cancel_order(self, key: str, txid: str) -> dict[str, Any]: ...

    def expire_order(self, key: str, txid: str) -> None: ...

    def open_orders(self, key: str) -> dict[str, Any]: ...

    def order_status(self, key: str, txid: str) -> str | None: ...

    def drop_streams(self, key: str | None = None) -> int: ...

    def stall_streams(self, key: str | None = None) -> int: ...

    def resume_streams(self) -> None: ...

    def invalidate_sessions(self, key: str | None = None) -> int: ...

    def refuse_streams(self, on: bool = True) -> None: ...


def handle_orders(sim: OrdersTarget, verb: str, route: str, doc: dict[str, Any]) -> tuple[int, Any]:
    """``orders/<key>`` (GET: open orders; POST: place) and ``orders/<key>/<txid>/<action>``."""
    parts = [unquote(p) for p in route.removeprefix("orders/").split("/")]
    key = parts[0]
    try:
        if len(parts) == 1:
            if verb == "GET":
                return 200, {"open": sim.open_orders(key)}
            return 200, {"txid": [_place(sim, key, doc)]}
        if len(parts) != 3 or verb != "POST":
            return 404, {"error": f"unknown admin route /_sim/{route}"}
        txid, action = parts[1], parts[2]
        if action == "fill":
            sim.fill_order(key, txid, doc.get("volume"))
        elif action == "cancel":
            sim.cancel_order(key, txid)
        elif action == "expire":
            sim.expire_order(key, txid)
        else:
            return 404, {"error": f"unknown order action {action!r} (fill, cancel, expire)"}
        return 200, {"txid": txid, "status": sim.order_status(key, txid)}
    except OrderError as exc:
        return 409, {"error": str(exc)}


def _place(sim: OrdersTarget, key: str, doc: dict[str, Any]) -> str:
    extra = sorted(set(doc) - {"pair", "side", "volume", "price", "ordertype", "userref"})
    if extra:
        raise ValueError(f"unknown field {extra[0]!r}")
    for name in ("pair", "side", "volume"):
        if name not in doc:
            raise ValueError(f"{name} is required")
    return sim.place_order(
        key,
        str(doc["pair"]),
        str(doc["side"]),
        doc["volume"],
        price=doc.get("price"),
        ordertype=str(doc.get("ordertype", "limit")),
        userref=int(doc.get("userref", 0)),
    )


def handle_streams(sim: OrdersTarget, route: str, doc: dict[str, Any]) -> tuple[int, Any]:
    """``streams/<fault>`` with ``{"key": name}`` (optional; ``refuse`` takes ``{"on": bool}``)."""
    fault = route.removeprefix("streams/")
    if fault not in _STREAM_FAULTS:
        return 404, {"error": f"unknown stream fault {fault!r} ({', '.join(_STREAM_FAULTS)})"}
    key = doc.get("key")
    if key is not None and not isinstance(key, str):
        raise ValueError("key must be a key's name")
    if fault == "resume":
        sim.resume_streams()
        return 200, {"resumed": True}
    if fault == "refuse":
        on = doc.get("on", True)
        if not isinstance(on, bool):
            raise ValueError("on must be true or false")
        sim.refuse_streams(on)
        return 200, {"refusing": on}
    act = {
        "drop": sim.drop_streams,
        "stall": sim.stall_streams,
        "invalidate": sim.invalidate_sessions,
    }[fault]
    return 200, {"connections": act(key)}

"""The stateful private methods: placing and cancelling orders, ``OpenOrders`` (the order book,
:mod:`simulator.book`) and ``GetWebSocketsToken`` (a token the WebSocket server knows,
:mod:`simulator.tokens`). The engine hands them an authorised request (after key, signature,
rate limit, nonce and permission)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .book import OrderDesk
from .endpoints import is_validate
from .hub import StreamHub
from .keys import KeyState
from .tokens import TokenBook

__all__ = ["PrivateApi"]


class PrivateApi:
    def __init__(self, desk: OrderDesk, tokens: TokenBook, hub: StreamHub) -> None:
        self.desk = desk
        self.tokens = tokens
        self.hub = hub

    def handles(self, method: str, fields: Mapping[str, str]) -> bool:
        """Whether this answers ``method`` (a validate-only ``AddOrder`` stays stateless)."""
        if method == "AddOrder":
            return not is_validate(fields)
        return method in ("CancelOrder", "OpenOrders", "GetWebSocketsToken")

    def result(
        self, method: str, fields: Mapping[str, str], ks: KeyState, status: str
    ) -> dict[str, Any] | str:
        """The ``result`` of an authorised call, or its error string."""
        if method == "AddOrder":
            return self.desk.add_order(ks, fields, status)
        if method == "CancelOrder":
            txid = fields.get("txid", "")
            return self.desk.cancel_order(ks, txid) if txid else "EGeneral:Invalid arguments:txid"
        if method == "OpenOrders":
            return self.desk.open_orders(ks)
        token = self.tokens.issue(ks.key)
        self.hub.count_token(ks.key)
        return {"token": token, "expires": math.ceil(self.tokens.ttl_s)}

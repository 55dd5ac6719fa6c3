"""The stateful private methods: placing, changing and cancelling orders, the dead man's switch,
``OpenOrders`` (the order book, :mod:`simulator.book`; the trading methods in
:mod:`simulator.trading_api`) and ``GetWebSocketsToken`` (a token the WebSocket server knows,
:mod:`simulator.tokens`). The engine hands them an authorised request (after key, signature,
rate limit, nonce and permission)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .book import OrderDesk
from .deadman import DeadMansSwitch
from .endpoints import is_validate
from .hub import StreamHub
from .keys import KeyState
from .tokens import TokenBook
from .trading_api import TRADING_METHODS, TradingApi

__all__ = ["PrivateApi"]


class PrivateApi:
    def __init__(
        self, desk: OrderDesk, tokens: TokenBook, hub: StreamHub, deadman: DeadMansSwitch
    ) -> None:
        self.desk = desk
        self.tokens = tokens
        self.hub = hub
        self.trading = TradingApi(desk, deadman)

    def handles(self, method: str, fields: Mapping[str, str]) -> bool:
        """Whether this answers ``method`` (a validate-only ``AddOrder`` stays stateless)."""
        if method == "AddOrder":
            return not is_validate(fields)
        return method in TRADING_METHODS or method in ("OpenOrders", "GetWebSocketsToken")

    def result(
        self, method: str, fields: Mapping[str, str], ks: KeyState, status: str
    ) -> dict[str, Any] | str:
        """The ``result`` of an authorised call, or its error string."""
        if method == "AddOrder":
            return self.desk.add_order(ks, fields, status)
        if method in TRADING_METHODS:
            return self.trading.result(method, fields, ks, status)
        if method == "OpenOrders":
            return self.desk.open_orders(ks)
        token = self.tokens.issue(ks.key)
        self.hub.count_token(ks.key)
        return {"token": token, "expires": math.ceil(self.tokens.ttl_s)}

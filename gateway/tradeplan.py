"""What a trading call does to the per-pair trading counter, read from its form fields, and what
its answer teaches the gateway about the account's orders. Pure: no I/O, no clock of its own.

=====================  ==========================  ==================================================
method                 class                       counts (kraken-api.md, "Spot trading limits")
=====================  ==========================  ==================================================
``AddOrder``           opens                       +1 on its pair
``AddOrderBatch``      opens                       +n/2 for n orders on its pair
``EditOrder``          changes                     +1, more the younger the order
``AmendOrder``         changes                     +1, more the younger the order
``CancelOrder``        cancels                     by the age of each order it names
``CancelOrderBatch``   cancels (never held)        by the age of each order it names
``CancelAll``          cancels (never held)        by the age of every order the gateway saw
=====================  ==========================  ==================================================

Kraken accepts a batch cancel even past the threshold, and ``CancelAll`` is the way out: both
are charged, never held. Orders the gateway did not see opened (placed by another program, or older than the age horizon)
cost what their fixed count says, and nothing by age. ``validate=true`` calls place nothing and
count nothing here. A halt refuses the calls that open or change orders (validated or not) and
``GetWebSocketsToken`` (a token trades over the WebSocket API, past the gateway).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from broker.limits import trading_cost

from .guardstore import OrderSeen

__all__ = [
    "CHANGES",
    "OPENS",
    "TRADING_METHODS",
    "TradePlan",
    "charges",
    "is_trading",
    "learn",
    "plan_for",
]

OPENS = frozenset({"AddOrder", "AddOrderBatch"})
CHANGES = frozenset({"EditOrder", "AmendOrder"})
_CANCELS = frozenset({"CancelOrder", "CancelOrderBatch", "CancelAll"})
#: a token trades over Kraken's WebSocket API, past the gateway: refused while halted too
_TOKEN_METHOD = "GetWebSocketsToken"  # noqa: S105 (a method name)
TRADING_METHODS = OPENS | CHANGES | _CANCELS | {_TOKEN_METHOD}
_BATCH_INDEX = re.compile(r"^orders\[(\d+)\]")
#: turns a pair as a bot or the stream spells it into the gateway's one name for it
Canonical = Callable[[str], str]


@dataclass(frozen=True)
class TradePlan:
    """One trading call as the guard sees it."""

    method: str
    #: the pair it names (opens, edits), canonical; ``None``: the orders' own pairs
    pair: str | None = None
    #: what it opens counts as this many orders (a batch of n: n/2)
    opens: float = 0.0
    #: the references it names: txids, userrefs, client order ids
    refs: tuple[str, ...] = ()
    #: every order the gateway saw (``CancelAll``)
    every: bool = False
    #: ``validate=true``: Kraken only checks it; nothing counts (a halt still refuses it)
    validate: bool = False

    @property
    def halts(self) -> bool:
        """Refused while the account (or the caller) is halted."""
        return self.method in OPENS or self.method in CHANGES or self.method == _TOKEN_METHOD

    @property
    def holds(self) -> bool:
        """Waits for the trading budget (batch cancels and ``CancelAll``: charged, never
        held)."""
        return not self.every and self.method != "CancelOrderBatch"


def is_trading(method: str) -> bool:
    """Whether the trading guard looks at ``method``."""
    return method in TRADING_METHODS


def _field_values(fields: Sequence[tuple[str, str]], *names: str) -> list[str]:
    return [v for k, v in fields if k in names and v]


def plan_for(method: str, body: bytes, canonical: Canonical) -> TradePlan | None:
    """The plan of a trading call (``None``: not a trading call)."""
    if method not in TRADING_METHODS:
        return None
    if method == _TOKEN_METHOD:
        return TradePlan(method)
    fields = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    validates = [v.strip().lower() for k, v in fields if k == "validate"]
    validate = validates in (["true"], ["1"])  # only unambiguous: else it may be placed
    pairs = _field_values(fields, "pair")
    pair = canonical(pairs[0]) if pairs else None
    if method == "AddOrder":
        return TradePlan(method, pair, opens=1.0, validate=validate)
    if method == "AddOrderBatch":
        batch = {m.group(1) for k, _ in fields if (m := _BATCH_INDEX.match(k))}
        return TradePlan(method, pair, opens=max(1, len(batch)) / 2, validate=validate)
    if method == "CancelAll":
        return TradePlan(method, every=True)
    refs = _field_values(fields, "txid", "cl_ord_id", "userref")
    refs += [v for k, v in fields if k.startswith(("orders[", "cl_ord_ids[")) and v]
    expanded = tuple(ref.strip() for text in refs for ref in text.split(",") if ref.strip())
    return TradePlan(method, pair, refs=expanded)


def _matches(order: OrderSeen, refs: Iterable[str]) -> bool:
    return any(ref in (order.txid, order.userref, order.cl_ord_id) for ref in refs)


def charges(plan: TradePlan, orders: Sequence[OrderSeen], now: float) -> dict[str, float]:
    """pair -> what ``plan`` adds to its trading counter, given the orders the gateway saw."""
    owed: dict[str, float] = {}
    if plan.validate or plan.method == _TOKEN_METHOD:
        return owed

    def add(pair: str | None, cost: float) -> None:
        if pair is not None and cost > 0:
            owed[pair] = owed.get(pair, 0.0) + cost

    if plan.opens:
        add(plan.pair, trading_cost("add") * plan.opens)
        return owed
    named = [o for o in orders if plan.every or _matches(o, plan.refs)]
    if plan.method in CHANGES:
        kind = "edit" if plan.method == "EditOrder" else "amend"
        if not named:
            add(plan.pair, trading_cost(kind))
        for order in named[:1]:
            add(order.pair, trading_cost(kind, now - order.at))
        return owed
    for order in named:
        add(order.pair, trading_cost("cancel", now - order.at))
    return owed


@dataclass
class Learned:
    """What an answer changed in the gateway's picture of the orders."""

    opened: list[OrderSeen] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)


def _result(body: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("error") or not isinstance(doc.get("result"), dict):
        return None
    return doc["result"]


def _txids(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def learn(
    plan: TradePlan, body: bytes, fields: bytes, orders: Sequence[OrderSeen], now: float
) -> Learned:
    """The orders a successful answer opened (at ``now``: the latest they can have been
    opened, so the youngest, dearest age) and closed; nothing for an error."""
    result = _result(body)
    learned = Learned()
    if result is None or (plan.pair is None and plan.opens):
        return learned
    form = dict(parse_qsl(fields.decode("utf-8", "replace"), keep_blank_values=True))
    userref, cl_ord_id = form.get("userref") or None, form.get("cl_ord_id") or None
    if plan.method == "AddOrder" and plan.pair is not None:
        learned.opened = [
            OrderSeen(t, plan.pair, now, userref, cl_ord_id) for t in _txids(result.get("txid"))
        ]
    elif plan.method == "AddOrderBatch" and plan.pair is not None:
        batch = result.get("orders")
        entries = batch if isinstance(batch, list) else []
        learned.opened = [
            OrderSeen(t, plan.pair, now)
            for entry in entries
            if isinstance(entry, dict)
            for t in _txids(entry.get("txid"))
        ]
    elif plan.method in CHANGES:
        named = [o for o in orders if _matches(o, plan.refs)][:1]
        pair = named[0].pair if named else plan.pair
        new = _txids(result.get("txid")) if plan.method == "EditOrder" else []
        if plan.method == "AmendOrder":
            new = [o.txid for o in named]
        if pair is not None:
            learned.opened = [OrderSeen(t, pair, now, userref, cl_ord_id) for t in new]
        if plan.method == "EditOrder":
            learned.closed = [o.txid for o in named]
    else:
        learned.closed = [o.txid for o in orders if plan.every or _matches(o, plan.refs)]
    return learned

"""Kraken WebSocket v2 messages in and out, for the private stream (:mod:`broker.stream`): pure
functions and one small parser object, no I/O.

* :func:`subscribe_requests` writes the ``balances`` and ``executions`` subscribe requests.
* :class:`MessageParser` reads one message at a time into a :class:`Frame`: the events it
  carries, or the acknowledgement, pong or error it is. JSON numbers are read as
  :class:`~decimal.Decimal` and written back as plain decimal strings, so no amount ever loses a
  digit. A message that is not what Kraken documents raises :class:`MalformedMessage` (the
  stream counts it and carries on).
* :func:`error_kind` sorts Kraken's error strings: ``permission`` (stop trying), ``session``
  (fetch a fresh token and reconnect) or ``other``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from .streamevents import (
    BalancesSnapshot,
    BalanceUpdate,
    Execution,
    Heartbeat,
    OrdersSnapshot,
    RateCount,
    StreamEvent,
    SystemStatus,
)

__all__ = [
    "Ack",
    "Frame",
    "MalformedMessage",
    "MessageParser",
    "Subscriptions",
    "decode",
    "error_kind",
    "ping_request",
    "subscribe_requests",
]

#: the order ids remembered (for the pair of a rate counter on an event that names no pair)
_MEMO_LIMIT = 10_000
_CLOSED = frozenset({"filled", "canceled", "expired"})


class MalformedMessage(ValueError):
    """A message that is not JSON, or not shaped as Kraken documents it."""


@dataclass(frozen=True, slots=True)
class Subscriptions:
    """What the stream asks for (Kraken's parameter names; see its ``executions`` page)."""

    balances_snapshot: bool = True
    snap_orders: bool = True
    snap_trades: bool = False
    order_status: bool = True
    ratecounter: bool = True


@dataclass(frozen=True, slots=True)
class Ack:
    """A ``subscribe`` acknowledgement."""

    req_id: int | None
    success: bool
    channel: str | None
    error: str | None
    max_rate_count: int | None = None


@dataclass(frozen=True, slots=True)
class Frame:
    """One message, read: its events, or what else it was."""

    events: tuple[StreamEvent, ...] = ()
    ack: Ack | None = None
    pong: bool = False
    #: an error Kraken sent outside an acknowledgement
    error: str | None = None
    #: well-formed JSON that is none of the documented messages
    unexpected: bool = False
    #: the data channel (``heartbeat``, ``status``, ``balances``, ``executions``), if one
    channel: str | None = None


def subscribe_requests(token: str, subscriptions: Subscriptions, first_req_id: int) -> list[str]:
    """The two subscribe requests (``balances`` with ``first_req_id``, ``executions`` with the
    next), as JSON text. They hold the token: never log them."""
    balances = {"channel": "balances", "token": token, "snapshot": subscriptions.balances_snapshot}
    executions = {
        "channel": "executions",
        "token": token,
        "snap_orders": subscriptions.snap_orders,
        "snap_trades": subscriptions.snap_trades,
        "order_status": subscriptions.order_status,
        "ratecounter": subscriptions.ratecounter,
    }
    return [
        json.dumps({"method": "subscribe", "params": params, "req_id": first_req_id + i})
        for i, params in enumerate((balances, executions))
    ]


def ping_request(req_id: int) -> str:
    return json.dumps({"method": "ping", "req_id": req_id})


def error_kind(error: str) -> Literal["permission", "session", "other"]:
    """``permission`` for errors no retry can fix (``EAccount:Invalid permissions``,
    ``EGeneral:Permission denied``, ``EAPI:Invalid key``), ``session`` for
    ``ESession:Invalid session`` (a fresh token fixes it), else ``other``."""
    lowered = error.lower()
    if "permission" in lowered or lowered.startswith("eapi:invalid key"):
        return "permission"
    if lowered.startswith("esession:") or "invalid session" in lowered:
        return "session"
    return "other"


def _reject_constant(name: str) -> Any:
    raise MalformedMessage(f"not a number Kraken sends: {name}")


def decode(raw: str | bytes) -> dict[str, Any]:
    """One message as a JSON object, numbers with a fraction or exponent as ``Decimal``."""
    try:
        doc = json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise MalformedMessage(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise MalformedMessage(f"not a JSON object but {type(doc).__name__}")
    return doc


def amount(value: object, name: str) -> str:
    """A JSON number (or numeric string) as a plain decimal string, every digit kept."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise MalformedMessage(f"{name}: not a number: {value!r}")
    try:
        number = Decimal(value)
    except (InvalidOperation, ValueError):
        raise MalformedMessage(f"{name}: not a number: {value!r}") from None
    if not number.is_finite():
        raise MalformedMessage(f"{name}: not a finite number: {value!r}")
    return format(number, "f")


def _optional_amount(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    return None if value is None else amount(value, name)


def _text(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise MalformedMessage(f"{name}: not a string: {value!r}")


def _required(item: Mapping[str, Any], name: str) -> str:
    value = _text(item, name)
    if not value:
        raise MalformedMessage(f"{name}: missing")
    return value


def _count(value: object, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise MalformedMessage(f"{name}: not a count: {value!r}")
    if isinstance(value, Decimal) and (not value.is_finite() or value != value.to_integral()):
        raise MalformedMessage(f"{name}: not a count: {value!r}")
    return int(value)


def _rate(value: object) -> float | None:
    """The trading rate counter: a number (Kraken's decays continuously, so it has decimals)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise MalformedMessage(f"ratecount: not a number: {value!r}")
    if isinstance(value, Decimal) and not value.is_finite():
        raise MalformedMessage(f"ratecount: not a finite number: {value!r}")
    return float(value)


def _items(doc: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    data = doc.get("data")
    if not isinstance(data, list):
        raise MalformedMessage("data: not a list")
    for item in data:
        if not isinstance(item, dict):
            raise MalformedMessage("data: an entry is not an object")
        yield item


def _fees(item: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    fees = item.get("fees")
    if fees is None:
        return ()
    if not isinstance(fees, list) or not all(isinstance(f, dict) for f in fees):
        raise MalformedMessage("fees: not a list of objects")
    return tuple((_required(f, "asset"), amount(f.get("qty"), "qty")) for f in fees)


class MessageParser:
    """Reads the messages of one account's stream. Remembers the executions threshold
    (``maxratecount``) and each open order's pair, so a rate counter on an event that names no
    pair is still attributed to its pair."""

    def __init__(self, account: str, clock: Callable[[], float]):
        self.account = account
        self.clock = clock
        self.max_rate_count: int | None = None
        self._symbols: dict[str, str] = {}

    def parse(self, raw: str | bytes) -> Frame:
        doc = decode(raw)
        method, channel = doc.get("method"), doc.get("channel")
        if method == "pong":
            return Frame(pong=True)
        if method in ("subscribe", "unsubscribe"):
            return Frame(ack=self._ack(doc))
        if channel == "heartbeat":
            return Frame(events=(Heartbeat(self.account, self.clock()),), channel="heartbeat")
        if channel == "status":
            return Frame(events=self._status(doc), channel="status")
        if channel == "balances":
            return Frame(events=self._balances(doc), channel="balances")
        if channel == "executions":
            return Frame(events=self._executions(doc), channel="executions")
        error = doc.get("error")
        if isinstance(error, str) and error:
            return Frame(error=error)
        return Frame(unexpected=True)

    def _ack(self, doc: Mapping[str, Any]) -> Ack:
        success = doc.get("success")
        if not isinstance(success, bool):
            raise MalformedMessage("success: not a boolean")
        result = doc.get("result")
        if not isinstance(result, dict):
            result = {}
        channel = result.get("channel") if isinstance(result.get("channel"), str) else None
        max_rate = _count(result.get("maxratecount"), "maxratecount")
        if channel == "executions" and max_rate is not None:
            self.max_rate_count = max_rate
        error = doc.get("error")
        req_id = doc.get("req_id")
        return Ack(
            req_id=req_id if isinstance(req_id, int) and not isinstance(req_id, bool) else None,
            success=success,
            channel=channel,
            error=str(error) if error is not None else None,
            max_rate_count=max_rate,
        )

    def _status(self, doc: Mapping[str, Any]) -> tuple[StreamEvent, ...]:
        at = self.clock()
        return tuple(
            SystemStatus(
                self.account,
                _required(item, "system"),
                at,
                api_version=_text(item, "api_version"),
            )
            for item in _items(doc)
        )

    def _balances(self, doc: Mapping[str, Any]) -> tuple[StreamEvent, ...]:
        at = self.clock()
        kind = doc.get("type")
        if kind == "snapshot":
            balances = {
                _required(item, "asset"): amount(item.get("balance"), "balance")
                for item in _items(doc)
            }
            return (BalancesSnapshot(self.account, balances, at),)
        if kind == "update":
            return tuple(self._ledger_entry(item, at) for item in _items(doc))
        raise MalformedMessage(f"balances: unknown type {kind!r}")

    def _ledger_entry(self, item: Mapping[str, Any], at: float) -> BalanceUpdate:
        return BalanceUpdate(
            account=self.account,
            asset=_required(item, "asset"),
            amount=amount(item.get("amount"), "amount"),
            balance=amount(item.get("balance"), "balance"),
            fee=amount(item.get("fee", 0), "fee"),
            ledger_id=_text(item, "ledger_id"),
            kind=_text(item, "type"),
            at=at,
            ref_id=_text(item, "ref_id"),
            wallet_type=_text(item, "wallet_type"),
            timestamp=_text(item, "timestamp"),
        )

    def _executions(self, doc: Mapping[str, Any]) -> tuple[StreamEvent, ...]:
        at = self.clock()
        kind = doc.get("type")
        if kind not in ("snapshot", "update"):
            raise MalformedMessage(f"executions: unknown type {kind!r}")
        executions = tuple(self._execution(item, at) for item in _items(doc))
        counts = tuple(self._rate_count(e) for e in executions if e.ratecount is not None)
        for execution in executions:
            if execution.order_status in _CLOSED:
                self._symbols.pop(execution.order_id, None)
        rates = tuple(c for c in counts if c is not None)
        if kind == "snapshot":
            return (OrdersSnapshot(self.account, executions, at), *rates)
        return executions + rates

    def _execution(self, item: Mapping[str, Any], at: float) -> Execution:
        order_id = _required(item, "order_id")
        symbol = _text(item, "symbol")
        if symbol is not None:
            self._remember(order_id, symbol)
        return Execution(
            account=self.account,
            exec_type=_required(item, "exec_type"),
            order_id=order_id,
            symbol=symbol,
            side=_text(item, "side"),
            order_type=_text(item, "order_type"),
            order_qty=_optional_amount(item, "order_qty"),
            limit_price=_optional_amount(item, "limit_price"),
            order_status=_text(item, "order_status"),
            last_qty=_optional_amount(item, "last_qty"),
            last_price=_optional_amount(item, "last_price"),
            cost=_optional_amount(item, "cost"),
            fees=_fees(item),
            cum_qty=_optional_amount(item, "cum_qty"),
            timestamp=_text(item, "timestamp"),
            ratecount=_rate(item.get("ratecount")),
            at=at,
            exec_id=_text(item, "exec_id"),
            cl_ord_id=_text(item, "cl_ord_id"),
            avg_price=_optional_amount(item, "avg_price"),
            cum_cost=_optional_amount(item, "cum_cost"),
            reason=_text(item, "reason"),
        )

    def _remember(self, order_id: str, symbol: str) -> None:
        self._symbols[order_id] = symbol
        if len(self._symbols) > _MEMO_LIMIT:
            del self._symbols[next(iter(self._symbols))]

    def _rate_count(self, execution: Execution) -> RateCount | None:
        symbol = execution.symbol or self._symbols.get(execution.order_id)
        if symbol is None or execution.ratecount is None:
            return None
        return RateCount(
            self.account, symbol, execution.ratecount, self.max_rate_count, execution.at
        )

"""The stream's pure parts: message parsing, amounts, error kinds, backoff, the URL rule. No
network."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError
from typing import Any

import pytest

from broker import (
    DEFAULT_WS_AUTH_URL,
    Backoff,
    BalancesSnapshot,
    BalanceUpdate,
    ConfigurationError,
    Execution,
    Heartbeat,
    OrdersSnapshot,
    RateCount,
    Subscriptions,
    SystemStatus,
    parse_ws_url,
    with_rest_names,
    ws_url_default,
)
from broker.paths import WS_URL_VARIABLE
from broker.streamparse import (
    MalformedMessage,
    MessageParser,
    amount,
    error_kind,
    ping_request,
    subscribe_requests,
)

AT = 1_700_000_000.5


def parser() -> MessageParser:
    return MessageParser("USER:ann", lambda: AT)


def text(doc: dict[str, Any]) -> str:
    return json.dumps(doc)


# -- amounts keep every digit ----------------------------------------------------------------


def test_numbers_come_back_as_the_decimal_text_kraken_sent() -> None:
    raw = '{"channel":"balances","type":"snapshot","data":[{"asset":"BTC","balance":0.00000001},{"asset":"USD","balance":1000.0000},{"asset":"ETH","balance":12345678901234567.123456789012},{"asset":"DOT","balance":5},{"asset":"SOL","balance":1e-8}]}'
    frame = parser().parse(raw)
    (snapshot,) = frame.events
    assert isinstance(snapshot, BalancesSnapshot)
    assert snapshot.balances == {
        "BTC": "0.00000001",
        "USD": "1000.0000",
        "ETH": "12345678901234567.123456789012",
        "DOT": "5",
        "SOL": "0.00000001",
    }
    assert (snapshot.account, snapshot.at) == ("USER:ann", AT)


@pytest.mark.parametrize("bad", [True, None, "abc", "NaN", "Infinity", [1], {"a": 1}])
def test_an_amount_that_is_not_a_finite_number_is_malformed(bad: object) -> None:
    with pytest.raises(MalformedMessage):
        amount(bad, "balance")


def test_numeric_strings_are_accepted_as_amounts() -> None:
    assert amount("0.10", "x") == "0.10"


# -- message kinds ---------------------------------------------------------------------------


def test_heartbeat_status_pong_and_acks() -> None:
    p = parser()
    assert p.parse('{"channel":"heartbeat"}').events == (Heartbeat("USER:ann", AT),)
    status = p.parse(
        text(
            {
                "channel": "status",
                "type": "update",
                "data": [{"system": "online", "api_version": "v2", "version": "2.0.0"}],
            }
        )
    )
    assert status.events == (SystemStatus("USER:ann", "online", AT, api_version="v2"),)
    assert p.parse('{"method":"pong","req_id":3}').pong
    ack = p.parse(
        text(
            {
                "method": "subscribe",
                "result": {"channel": "executions", "maxratecount": 180, "snapshot": True},
                "success": True,
                "req_id": 2,
            }
        )
    ).ack
    assert ack is not None and ack.success and ack.req_id == 2 and ack.channel == "executions"
    assert ack.max_rate_count == p.max_rate_count == 180
    failed = p.parse(
        '{"method":"subscribe","success":false,"error":"EAccount:Invalid permissions","req_id":1}'
    ).ack
    assert failed is not None and not failed.success
    assert failed.error == "EAccount:Invalid permissions"


def test_unknown_but_well_formed_messages_are_flagged_not_fatal() -> None:
    p = parser()
    assert p.parse('{"channel":"ticker","type":"update","data":[]}').unexpected
    assert p.parse('{"hello":"world"}').unexpected
    frame = p.parse('{"error":"ESession:Invalid session","time_in":"x"}')
    assert frame.error == "ESession:Invalid session" and not frame.unexpected


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "",
        "[1, 2]",
        '"text"',
        "{",
        '{"channel":"balances","type":"snapshot","data":{"asset":"BTC"}}',
        '{"channel":"balances","type":"snapshot","data":[{"asset":"BTC","balance":"x"}]}',
        '{"channel":"balances","type":"snapshot","data":[{"balance":1}]}',
        '{"channel":"balances","type":"weird","data":[]}',
        '{"channel":"balances","type":"update","data":[{"asset":"USD","balance":1}]}',
        '{"channel":"executions","type":"update","data":[{"exec_type":"new"}]}',
        '{"channel":"executions","type":"update","data":[{"order_id":"O1"}]}',
        '{"channel":"executions","type":"update","data":[{"order_id":"O1","exec_type":"new","ratecount":"x"}]}',
        '{"channel":"executions","type":"update","data":[{"order_id":"O1","exec_type":"new","fees":"x"}]}',
        '{"channel":"executions","type":"update","data":["x"]}',
        '{"channel":"executions","data":[]}',
        '{"channel":"status","type":"update","data":[{"system":7.5}]}',
        '{"method":"subscribe","success":"yes"}',
        '{"channel":"balances","type":"snapshot","data":[{"asset":"BTC","balance":NaN}]}',
    ],
)
def test_malformed_messages_raise_one_error_type(raw: str) -> None:
    with pytest.raises(MalformedMessage):
        parser().parse(raw)


def test_bytes_are_read_like_text() -> None:
    assert parser().parse(b'{"channel":"heartbeat"}').channel == "heartbeat"


# -- balances --------------------------------------------------------------------------------


def test_ledger_updates_become_balance_updates() -> None:
    raw = text(
        {
            "channel": "balances",
            "type": "update",
            "data": [
                {
                    "asset": "USD",
                    "amount": -25.5,
                    "balance": 974.5,
                    "fee": 0.1,
                    "ledger_id": "L4UESK-KG3EQ-UFO4T5",
                    "ref_id": "TJKLXX-PGMUI-4NTLXU",
                    "timestamp": "2023-09-22T10:33:05.709993Z",
                    "type": "trade",
                    "subtype": "",
                    "category": "trade",
                    "wallet_type": "spot",
                    "wallet_id": "main",
                    "asset_class": "currency",
                },
                {"asset": "BTC", "amount": 0.0005, "balance": 0.0005, "fee": 0, "type": "trade"},
            ],
        }
    )
    first, second = parser().parse(raw).events
    assert first == BalanceUpdate(
        account="USER:ann",
        asset="USD",
        amount="-25.5",
        balance="974.5",
        fee="0.1",
        ledger_id="L4UESK-KG3EQ-UFO4T5",
        kind="trade",
        at=AT,
        ref_id="TJKLXX-PGMUI-4NTLXU",
        wallet_type="spot",
        timestamp="2023-09-22T10:33:05.709993Z",
    )
    assert isinstance(second, BalanceUpdate)
    assert (second.asset, second.amount, second.fee, second.ledger_id) == (
        "BTC",
        "0.0005",
        "0",
        None,
    )


def test_with_rest_names_prefers_the_names_rest_answered() -> None:
    stream = {"BTC": "0.5", "USD": "10.00", "USDT": "1", "ETH.F": "2"}
    assert with_rest_names(stream) == {"XXBT": "0.5", "ZUSD": "10.00", "USDT": "1", "XETH.F": "2"}
    assert with_rest_names(stream, known=["XBT.M", "ZUSD"])["ZUSD"] == "10.00"
    assert with_rest_names({"DOGE": "3"}, known=["XXDG"]) == {"XXDG": "3"}


# -- executions ------------------------------------------------------------------------------


def execution_item(**fields: Any) -> dict[str, Any]:
    base = {
        "order_id": "OABC12-DEF34-GHI567",
        "exec_type": "new",
        "order_status": "new",
        "symbol": "BTC/USD",
        "side": "buy",
        "order_type": "limit",
        "order_qty": 0.01,
        "limit_price": 30000.1,
        "timestamp": "2024-05-18T11:00:37.240691Z",
    }
    return {**base, **fields}


def test_an_orders_snapshot_then_updates_with_rate_counts() -> None:
    p = parser()
    p.parse(
        '{"method":"subscribe","result":{"channel":"executions","maxratecount":60},"success":true,"req_id":2}'
    )
    snap = p.parse(
        text({"channel": "executions", "type": "snapshot", "data": [execution_item(ratecount=4)]})
    )
    orders, rate = snap.events
    assert isinstance(orders, OrdersSnapshot) and len(orders.orders) == 1
    order = orders.orders[0]
    assert (order.order_id, order.symbol, order.order_qty, order.limit_price) == (
        "OABC12-DEF34-GHI567",
        "BTC/USD",
        "0.01",
        "30000.1",
    )
    assert rate == RateCount("USER:ann", "BTC/USD", 4, 60, AT)
    # a trade names no pair: the pair comes from the order seen before
    trade = {
        "order_id": "OABC12-DEF34-GHI567",
        "exec_type": "trade",
        "order_status": "partially_filled",
        "exec_id": "TJE7HC-DKBTI-5BFVKE",
        "last_qty": 0.004,
        "last_price": 30000.1,
        "cost": 120.0004,
        "cum_qty": 0.004,
        "fees": [{"asset": "USD", "qty": 0.312}],
        "ratecount": 5,
        "timestamp": "2024-05-18T11:01:00.000001Z",
    }
    execution, count = p.parse(
        text({"channel": "executions", "type": "update", "data": [trade]})
    ).events
    assert isinstance(execution, Execution)
    assert execution.symbol is None and execution.exec_type == "trade"
    assert (execution.last_qty, execution.last_price, execution.cost) == (
        "0.004",
        "30000.1",
        "120.0004",
    )
    assert execution.fees == (("USD", "0.312"),) and execution.exec_id == "TJE7HC-DKBTI-5BFVKE"
    assert count == RateCount("USER:ann", "BTC/USD", 5, 60, AT)
    # once the order is closed its pair is forgotten
    filled = {"order_id": "OABC12-DEF34-GHI567", "exec_type": "filled", "order_status": "filled"}
    assert (
        len(p.parse(text({"channel": "executions", "type": "update", "data": [filled]})).events)
        == 1
    )
    later = {**filled, "exec_type": "status", "ratecount": 2}
    events = p.parse(text({"channel": "executions", "type": "update", "data": [later]})).events
    assert [type(e) for e in events] == [Execution]


def test_events_are_frozen() -> None:
    event = Heartbeat("MASTER", AT)
    with pytest.raises(FrozenInstanceError):
        event.at = 0.0  # type: ignore[misc]


# -- what the client sends -------------------------------------------------------------------


def test_subscribe_requests_ask_for_what_the_options_say() -> None:
    balances, executions = (
        json.loads(r) for r in subscribe_requests("tok", Subscriptions(ratecounter=False), 7)
    )
    assert balances == {
        "method": "subscribe",
        "params": {"channel": "balances", "token": "tok", "snapshot": True},
        "req_id": 7,
    }
    assert executions["req_id"] == 8
    assert executions["params"] == {
        "channel": "executions",
        "token": "tok",
        "snap_orders": True,
        "snap_trades": False,
        "order_status": True,
        "ratecounter": False,
    }
    assert json.loads(ping_request(9)) == {"method": "ping", "req_id": 9}


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ("EAccount:Invalid permissions", "permission"),
        ("EGeneral:Permission denied", "permission"),
        ("EAPI:Invalid key", "permission"),
        ("ESession:Invalid session", "session"),
        ("EGeneral:Internal error", "other"),
        ("Already subscribed", "other"),
    ],
)
def test_error_kinds(error: str, kind: str) -> None:
    assert error_kind(error) == kind


# -- backoff ---------------------------------------------------------------------------------


class Steps:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_backoff_doubles_up_to_the_cap_with_full_jitter() -> None:
    top = Backoff(0.5, 30.0, random=lambda: 1.0)
    assert [top.next_delay() for _ in range(9)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    bottom = Backoff(0.5, 30.0, random=lambda: 0.0)
    assert {bottom.next_delay() for _ in range(5)} == {0.0}
    half = Backoff(0.5, 30.0, random=lambda: 0.5)
    assert [half.next_delay() for _ in range(3)] == [0.25, 0.5, 1.0]
    huge = Backoff(0.5, 30.0, random=lambda: 1.0)
    huge.attempt = 5000
    assert huge.next_delay() == 30.0


def test_backoff_restarts_after_a_long_connection_only() -> None:
    clock = Steps()
    backoff = Backoff(0.5, 30.0, reset_after_s=60.0, random=lambda: 1.0, clock=clock)
    for _ in range(4):
        backoff.next_delay()
    backoff.connected()
    clock.now += 59.0
    backoff.disconnected()
    assert backoff.next_delay() == 8.0  # a short connection: the series goes on
    backoff.connected()
    clock.now += 61.0
    backoff.disconnected()
    assert backoff.next_delay() == 0.5
    backoff.next_delay()
    backoff.reset()
    assert backoff.ceiling() == 0.5


def test_backoff_checks_its_settings() -> None:
    with pytest.raises(ValueError):
        Backoff(0.0)
    with pytest.raises(ValueError):
        Backoff(5.0, cap_s=1.0)


# -- the URL rule ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "good", ["wss://ws-auth.kraken.com/v2", "ws://127.0.0.1:8765/v2", " ws://localhost:1/ "]
)
def test_ws_urls_that_parse(good: str) -> None:
    assert parse_ws_url(good) == good.strip()


@pytest.mark.parametrize(
    "bad",
    [
        "https://ws-auth.kraken.com/v2",
        "wss://",
        "wss://ws-auth.kraken.com/v2?x=1",
        "wss://ws-auth.kraken.com/v2#frag",
        "wss://user:pw@ws-auth.kraken.com/v2",
        "wss://ws auth.kraken.com/v2",
        "wss://ws-auth.kraken.com:0/v2",
        "wss://ws-auth.kraken.com:99999/v2",
        "ws-auth.kraken.com/v2",
        "",
    ],
)
def test_ws_urls_that_are_refused_name_the_variable(bad: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_ws_url(bad)
    assert info.value.variable == WS_URL_VARIABLE
    assert WS_URL_VARIABLE in str(info.value)


def test_krakens_own_ws_url_only_with_krakens_own_rest_url() -> None:
    assert ws_url_default({}) == DEFAULT_WS_AUTH_URL
    assert ws_url_default({}, api_url="https://api.kraken.com/") == DEFAULT_WS_AUTH_URL
    assert ws_url_default({"KRAKEN_API_URL": "https://api.kraken.com"}) == DEFAULT_WS_AUTH_URL
    for env, api_url in [
        ({"KRAKEN_API_URL": "http://127.0.0.1:9000"}, None),
        ({}, "http://127.0.0.1:9000"),
        ({}, "https://api.kraken.com.evil.example"),
        ({"KRAKEN_API_URL": "https://api.kraken.com"}, "http://gateway:8080"),
    ]:
        with pytest.raises(ConfigurationError) as info:
            ws_url_default(env, api_url=api_url)
        assert info.value.variable == WS_URL_VARIABLE
        assert "KRAKEN_API_URL points elsewhere" in str(info.value)


def test_the_variable_wins_and_is_checked() -> None:
    env = {"KRAKEN_WS_AUTH_URL": "ws://127.0.0.1:5/v2", "KRAKEN_API_URL": "http://127.0.0.1:4"}
    assert ws_url_default(env) == "ws://127.0.0.1:5/v2"
    with pytest.raises(ConfigurationError, match="is empty"):
        ws_url_default({"KRAKEN_WS_AUTH_URL": " "})
    with pytest.raises(ConfigurationError, match=WS_URL_VARIABLE):
        ws_url_default({"KRAKEN_WS_AUTH_URL": "http://x"})


def test_with_krakens_rest_url_the_token_goes_only_to_krakens_wss() -> None:
    kraken = {"KRAKEN_API_URL": "https://api.kraken.com"}
    for typo in (
        "wss://ws-auth.kraken.co/v2",
        "ws://ws-auth.kraken.com/v2",
        "wss://kraken.com.evil/v2",
    ):
        with pytest.raises(ConfigurationError) as info:
            ws_url_default({**kraken, "KRAKEN_WS_AUTH_URL": typo})
        assert info.value.variable == WS_URL_VARIABLE and "not a wss:// URL of kraken.com" in str(
            info.value
        )
    beta = "wss://beta-ws-auth.kraken.com/v2"
    assert ws_url_default({**kraken, "KRAKEN_WS_AUTH_URL": beta}) == beta

"""USD prices from the simulator's public AssetPairs and Ticker, over real HTTP: batched, cached,
and never a made-up number when Kraken fails."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from broker import CallEvent, RefreshEvent
from dashboard.monitor.prices import NO_PAIR, PriceSource
from simulator import Scenario, Simulator
from testkit.net import free_port

HELD = ["ZUSD", "USD.F", "USDT", "XXBT", "XBT.M", "ETH2.S", "SOL", "KFEE"]


class Calls:
    """A broker observer that records the public calls of the price source."""

    def __init__(self) -> None:
        self.methods: list[str] = []

    def on_call(self, event: CallEvent) -> None:
        self.methods.append(event.method)

    def on_refresh(self, event: RefreshEvent) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(Scenario(keys=[], prices={"XXBT": "65000.0", "SOL": "150.25"})) as running:
        yield running


def source(url: str, tmp_path: Path, calls: Calls, clock: Clock) -> PriceSource:
    return PriceSource(
        api_url=url,
        timeout_s=5.0,
        clock=clock,
        observer=calls,
    )


def test_every_asset_priced_in_one_batched_request_cached_for_a_minute(
    sim: Simulator, tmp_path: Path
) -> None:
    calls, clock = Calls(), Clock()
    prices = source(sim.url, tmp_path, calls, clock)
    first = prices.usd_prices(HELD)
    assert first.prices == {
        "ZUSD": Decimal(1),
        "USD.F": Decimal(1),
        "USDT": Decimal("1.0000"),
        "XXBT": Decimal("65000.0"),  # the scenario's price, digit for digit
        "XBT.M": Decimal("65000.0"),
        "ETH2.S": Decimal("3000.00"),  # staked ETH through XETHZUSD: Kraken has no ETH2 pair
        "SOL": Decimal("150.25"),
    }
    assert first.missing == {"KFEE": NO_PAIR}
    assert first.fetched_at is not None
    assert calls.methods == ["AssetPairs", "Ticker"]  # one Ticker request for every pair

    clock.now += 59
    assert prices.usd_prices(HELD) == first
    assert calls.methods == ["AssetPairs", "Ticker"], "asked Kraken again within the minute"

    clock.now += 1
    assert prices.usd_prices(HELD).prices == first.prices
    assert calls.methods == ["AssetPairs", "Ticker", "Ticker"]
    assert prices.usd_prices([]).prices == {}
    assert calls.methods == ["AssetPairs", "Ticker", "Ticker"]


def test_a_failed_ticker_means_no_price_with_the_reason_until_the_next_attempt(
    sim: Simulator, tmp_path: Path
) -> None:
    calls, clock = Calls(), Clock()
    prices = source(sim.url, tmp_path, calls, clock)
    sim.set_faults(api_error="EService:Unavailable", scope="public", methods=["Ticker"])
    failed = prices.usd_prices(HELD)
    assert failed.prices == {"ZUSD": Decimal(1), "USD.F": Decimal(1)}  # the dollar needs no price
    assert failed.missing["XXBT"] == "Ticker failed: EService:Unavailable"
    assert failed.missing["KFEE"] == NO_PAIR
    sim.clear_faults()
    clock.now += 30
    assert prices.usd_prices(HELD) == failed, "a failure is not retried on every page run"
    clock.now += 30
    assert prices.usd_prices(HELD).prices["XXBT"] == Decimal("65000.0")
    assert calls.methods == ["AssetPairs", "Ticker", "Ticker"]


def test_a_price_that_is_not_a_decimal_string_is_no_price(sim: Simulator, tmp_path: Path) -> None:
    body = {"error": [], "result": {"XXBTZUSD": {"c": [65000.5, "1"]}}}
    sim.set_faults(body=json.dumps(body), scope="public", methods=["Ticker"])
    got = source(sim.url, tmp_path, Calls(), Clock()).usd_prices(["XXBT", "USDT"])
    assert got.prices == {}
    assert got.missing == {
        "XXBT": "XXBTZUSD: no last trade price in Kraken's Ticker answer",
        "USDT": "USDTUSD missing from Kraken's Ticker answer",
    }


def test_kraken_unreachable_leaves_only_the_dollar_priced(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    got = source(url, tmp_path, Calls(), Clock()).usd_prices(["ZUSD", "XXBT"])
    assert got.prices == {"ZUSD": Decimal(1)}
    assert got.missing["XXBT"].startswith("AssetPairs failed: ")

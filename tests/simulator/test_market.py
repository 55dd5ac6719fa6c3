"""Public market data over real HTTP: Ticker and AssetPairs in Kraken's formats, batching, unknown
pairs, scenario prices (override, extend, errors naming the file and field), the demo's unpriced
asset."""

from __future__ import annotations

import json
import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from simulator import KeySpec, Scenario, ScenarioError, Simulator, builtin_scenario, load_scenario
from testkit.rawclient import raw_request
from testkit.sim import call, make_key, scenario_document, simulator_process

ROOT = Path(__file__).resolve().parents[2]
TICKER_FIELDS = {"a", "b", "c", "v", "p", "t", "l", "h", "o"}
PAIR_FIELDS = {
    "altname",
    "wsname",
    "aclass_base",
    "base",
    "aclass_quote",
    "quote",
    "lot",
    "cost_decimals",
    "pair_decimals",
    "lot_decimals",
    "lot_multiplier",
    "leverage_buy",
    "leverage_sell",
    "fees",
    "fees_maker",
    "fee_volume_currency",
    "margin_call",
    "margin_stop",
    "ordermin",
    "costmin",
    "tick_size",
    "status",
}
DECIMAL_RE = re.compile(r"[0-9]+\.[0-9]+")


def public(url: str, method: str, query: str = "") -> dict[str, Any]:
    """GET /0/public/<method>?<query>: the JSON document (HTTP 200, as Kraken answers errors)."""
    response = raw_request(url, "GET", f"/0/public/{method}" + (f"?{query}" if query else ""))
    assert response.status == 200, response.body
    assert response.headers["content-type"] == "application/json"
    return dict(response.json())


def result(url: str, method: str, query: str = "") -> dict[str, Any]:
    doc = public(url, method, query)
    assert doc["error"] == [], doc
    return dict(doc["result"])


@pytest.fixture
def sim(start_simulator) -> Simulator:
    return start_simulator()


# --------------------------------------------------------------------------------- formats
def test_ticker_answers_under_the_pair_name_in_krakens_format(sim: Simulator) -> None:
    tickers = result(sim.url, "Ticker", "pair=XBTUSD")
    assert list(tickers) == ["XXBTZUSD"]
    ticker = tickers["XXBTZUSD"]
    assert set(ticker) == TICKER_FIELDS
    for name in ("a", "b"):  # [price, whole lot volume, lot volume], all strings
        assert len(ticker[name]) == 3 and all(isinstance(v, str) for v in ticker[name])
    for name in ("c", "v", "p", "l", "h"):  # [price, lot volume] / [today, last 24 hours]
        assert len(ticker[name]) == 2 and all(DECIMAL_RE.fullmatch(v) for v in ticker[name])
    assert len(ticker["t"]) == 2 and all(type(v) is int for v in ticker["t"])
    assert isinstance(ticker["o"], str) and DECIMAL_RE.fullmatch(ticker["o"])
    # the built-in price is the last trade; bid below, ask above
    last, bid, ask = (Decimal(ticker[k][0]) for k in ("c", "b", "a"))
    assert last == Decimal("50000.0") and bid < last < ask
    assert Decimal(ticker["l"][0]) <= last <= Decimal(ticker["h"][0])


def test_asset_pairs_describe_every_priced_asset_quoted_in_zusd(sim: Simulator) -> None:
    pairs = result(sim.url, "AssetPairs")
    assert set(pairs) == set(result(sim.url, "Ticker")), "Ticker and AssetPairs disagree"
    bases = {info["base"] for info in pairs.values()}
    assert {"XXBT", "XETH", "USDT", "USDC"} <= bases and "ZUSD" not in bases
    for name, info in pairs.items():
        assert set(info) == PAIR_FIELDS, name
        assert info["quote"] == "ZUSD" and info["fee_volume_currency"] == "ZUSD"
        assert info["status"] == "online"
        assert isinstance(info["pair_decimals"], int) and isinstance(info["lot_decimals"], int)
        assert Decimal(info["tick_size"]) == Decimal(1).scaleb(-info["pair_decimals"])
        assert Decimal(info["ordermin"]) > 0
    xbt = pairs["XXBTZUSD"]
    assert (xbt["altname"], xbt["wsname"], xbt["base"]) == ("XBTUSD", "XBT/USD", "XXBT")
    assert xbt["pair_decimals"] == 1 and xbt["lot_decimals"] == 8
    usdt = pairs["USDTUSD"]
    assert (usdt["altname"], usdt["wsname"], usdt["base"]) == ("USDTUSD", "USDT/USD", "USDT")
    # the ticker's prices have the pair's decimals
    ticker = result(sim.url, "Ticker", "pair=XBTUSD")["XXBTZUSD"]
    assert ticker["c"][0].partition(".")[2] == "0" * xbt["pair_decimals"]


def test_asset_pairs_filter_and_info_views(sim: Simulator) -> None:
    pairs = result(sim.url, "AssetPairs", "pair=ETHUSD,XXBTZUSD")
    assert list(pairs) == ["XETHZUSD", "XXBTZUSD"]
    fees = result(sim.url, "AssetPairs", "pair=XBTUSD&info=fees")["XXBTZUSD"]
    assert set(fees) == {"fees", "fees_maker", "fee_volume_currency"}
    assert all(len(step) == 2 for step in fees["fees"])
    assert set(result(sim.url, "AssetPairs", "info=margin")["XETHZUSD"]) == {
        "margin_call",
        "margin_stop",
    }
    assert public(sim.url, "AssetPairs", "info=everything")["error"] == [
        "EGeneral:Invalid arguments:info"
    ]


# ------------------------------------------------------------------------ batching, unknowns
def test_one_request_prices_many_pairs_by_name_or_altname(sim: Simulator) -> None:
    tickers = result(sim.url, "Ticker", "pair=XBTUSD,XETHZUSD,USDTUSD,XXBTZUSD")
    # in the order asked, each pair once, under its name
    assert list(tickers) == ["XXBTZUSD", "XETHZUSD", "USDTUSD"]
    assert tickers["XETHZUSD"]["c"][0] == "3000.00"
    assert tickers["USDTUSD"]["c"][0] == "1.0000"
    # without a pair: every pair
    assert set(result(sim.url, "Ticker")) == {"XXBTZUSD", "XETHZUSD", "USDTUSD", "USDCUSD"}


@pytest.mark.parametrize(
    "query",
    ["pair=KFEEUSD", "pair=XBTUSD,NOPE", "pair=ETH2.SUSD", "pair=xbtusd", "pair=ZUSDUSD"],
)
def test_an_unknown_pair_is_krakens_error_for_the_whole_request(sim: Simulator, query: str) -> None:
    for method in ("Ticker", "AssetPairs"):
        doc = public(sim.url, method, query)
        assert doc == {"error": ["EQuery:Unknown asset pair"]}, (method, doc)


def test_market_data_is_get_only_like_every_public_method(sim: Simulator) -> None:
    response = raw_request(sim.url, "POST", "/0/public/Ticker", body="pair=XBTUSD")
    assert response.status == 405 and response.headers["allow"] == "GET"


# --------------------------------------------------------------------------- scenario prices
PRICED_TOML = """
prices = {{ XXBT = "65000.5", SOL = "150.25", DOGE = "0.12345678" }}

[[keys]]
key = "{key}"
secret = "{secret}"
balances = {{ ZUSD = "100.0000", XXBT = "0.0100000000", SOL = "2.0000000000", KFEE = "500.00" }}
"""


def _priced_file(tmp_path: Path, suffix: str) -> Path:
    key, secret = make_key("market")
    path = tmp_path / f"priced{suffix}"
    text = PRICED_TOML.format(key=key, secret=secret)
    if suffix == ".json":
        text = json.dumps(tomllib.loads(text))
    path.write_text(text)
    return path


def test_toml_and_json_prices_are_the_same(tmp_path: Path) -> None:
    toml, json_ = (load_scenario(_priced_file(tmp_path, s)) for s in (".toml", ".json"))
    assert toml.prices == json_.prices == {"XXBT": "65000.5", "SOL": "150.25", "DOGE": "0.12345678"}


def test_scenario_prices_override_and_extend_the_built_in_ones(tmp_path: Path) -> None:
    scenario = load_scenario(_priced_file(tmp_path, ".toml"))
    # through the CLI, like a bot developer would run it
    with simulator_process(scenario, tmp_path) as url:
        tickers = result(url, "Ticker", "pair=XBTUSD,SOLUSD,DOGEUSD,ETHUSD")
        assert tickers["XXBTZUSD"]["c"][0] == "65000.5"  # overridden
        assert tickers["XETHZUSD"]["c"][0] == "3000.00"  # built in, untouched
        assert tickers["SOLUSD"]["c"][0] == "150.25"  # added
        assert tickers["DOGEUSD"]["c"][0] == "0.12345678"  # every digit kept
        pairs = result(url, "AssetPairs", "pair=SOLUSD,DOGEUSD")
        assert (pairs["SOLUSD"]["base"], pairs["SOLUSD"]["wsname"]) == ("SOL", "SOL/USD")
        assert pairs["DOGEUSD"]["pair_decimals"] >= 8
        assert public(url, "Ticker", "pair=KFEEUSD")["error"] == ["EQuery:Unknown asset pair"]


def test_trade_balance_uses_the_same_prices(start_simulator) -> None:
    key, secret = make_key("trade-balance")
    spec = KeySpec(
        key=key,
        secret=secret,
        balances={"ZUSD": "100.0000", "XXBT": "0.0100000000", "SOL": "2.0", "KFEE": "500.00"},
    )
    sim = start_simulator(Scenario(keys=[spec], prices={"XXBT": "65000.5", "SOL": "150.25"}))
    eb = call(sim, spec, 1, "TradeBalance").json()["result"]["eb"]
    # 100 + 0.01 * 65000.5 + 2 * 150.25; KFEE has no price and counts nothing
    assert Decimal(eb) == Decimal("100") + Decimal("650.005") + Decimal("300.50")
    assert Decimal(result(sim.url, "Ticker", "pair=SOLUSD")["SOLUSD"]["c"][0]) == Decimal("150.25")


@pytest.mark.parametrize(
    ("prices", "field", "says"),
    [
        ('"cheap"', "prices", "table"),
        ("{ XXBT = 65000 }", "prices.XXBT", "decimal string"),
        ('{ XXBT = "lots" }', "prices.XXBT", "not a decimal number"),
        ('{ XXBT = "-1.0" }', "prices.XXBT", "non-negative"),
        ('{ XXBT = "0.0" }', "prices.XXBT", "above 0"),
        ('{ "ETH2.S" = "3000.0" }', "prices.ETH2.S", "staking suffix"),
        ('{ xbt = "1.0" }', "prices.xbt", "asset code"),
        ('{ XBT = "1.0" }', "prices.XBT", "XXBT"),
        ('{ USD = "1.0" }', "prices.USD", "ZUSD"),
        ('{ ZUSD = "2.0" }', "prices.ZUSD", "quote currency"),
    ],
)
def test_a_bad_price_names_the_file_and_the_field(
    tmp_path: Path, prices: str, field: str, says: str
) -> None:
    key, secret = make_key("bad-price")
    path = tmp_path / "bad.toml"
    path.write_text(f'prices = {prices}\n[[keys]]\nkey = "{key}"\nsecret = "{secret}"\n')
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert f"{path}: field '{field}'" in message and says in message, message
    assert secret not in message


def test_the_example_scenario_documents_prices() -> None:
    example = load_scenario(ROOT / "simulator" / "scenarios" / "example.toml")
    assert example.prices
    balances = {asset for spec in example.keys for asset in spec.balances}
    assert balances - set(example.prices) - {"ZUSD", "USDT", "XXBT"}, "no unpriced example asset"


# ------------------------------------------------------------------------------------- demo
def test_the_demo_holds_an_asset_without_a_price(start_simulator) -> None:
    scenario = builtin_scenario("demo")
    sim = start_simulator(scenario)
    bases = {info["base"] for info in result(sim.url, "AssetPairs").values()}
    held = {asset for spec in scenario.keys for asset in spec.balances}
    assert "KFEE" in held and "KFEE" not in bases
    assert public(sim.url, "Ticker", "pair=KFEEUSD")["error"] == ["EQuery:Unknown asset pair"]
    # the rest of MASTER's holdings are priced (legacy codes and staking suffixes mapped by the
    # client: ETH2.S is staked ETH, priced by XETHZUSD)
    master = scenario.keys[0]
    assert master.account == "MASTER"
    assert {a for a in master.balances if a != "ZUSD"} - bases == {"ETH2.S"}
    assert scenario_document(scenario).get("prices") is None  # the built-in prices only

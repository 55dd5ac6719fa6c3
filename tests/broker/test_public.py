"""PublicClient against a simulator with no keys, over real HTTP on 127.0.0.1: the common public
calls, and the same transport behaviour as a KrakenClient's public calls (URL handling, timeouts,
typed errors, observer reports)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from broker import (
    ConfigurationError,
    ConnectionLostError,
    HTTPStatusError,
    KrakenAPIError,
    KrakenClient,
    KrakenConnectionError,
    KrakenError,
    KrakenTimeout,
    OutcomeUnknownError,
    PublicClient,
    ResponseFormatError,
    ServiceUnavailableError,
    single_sample_skew,
)
from broker.paths import API_URL_VARIABLE, DEFAULT_API_URL
from simulator import Scenario, Simulator
from testkit.net import free_port
from testkit.observers import Recorder

StartSimulator = Callable[..., Simulator]
#: a client that makes public calls: a PublicClient, or a KrakenClient used for them
PublicCaller = PublicClient | KrakenClient


@pytest.fixture
def sim(start_simulator: StartSimulator) -> Simulator:
    """A simulator without a single key: nothing here can sign."""
    return start_simulator(Scenario(tier="unlimited", lockout_threshold=0))


def both_clients(url: str, tmp_path: Path, **kw: Any) -> list[PublicCaller]:
    """A PublicClient and a KrakenClient with the same settings, for the same public calls."""
    return [
        PublicClient(base_url=url, **kw),
        KrakenClient(base_url=url, store_dir=tmp_path, **kw),
    ]


def test_the_common_public_calls(sim: Simulator) -> None:
    sim.set_clock_offset(100.0)
    sim.set_system_status("cancel_only")
    with PublicClient(base_url=sim.url) as public:
        assert abs(public.server_time() - (time.time() + 100.0)) < 2.0
        assert public.system_status() == "cancel_only"
        ticker = public.ticker(["XBTUSD", "XETHZUSD"])
        assert sorted(ticker) == ["XETHZUSD", "XXBTZUSD"]  # asked by altname, answered by name
        assert ticker["XXBTZUSD"]["c"][0] == "50000.0"
        assert public.ticker("XBTUSD").keys() == {"XXBTZUSD"}
        assert {"XXBTZUSD", "XETHZUSD"} <= public.asset_pairs().keys()
        assert public.asset_pairs("XBTUSD")["XXBTZUSD"]["altname"] == "XBTUSD"
        assert public.call_public("Assets")["ZUSD"]["altname"] == "USD"
        document = public.query_public("Time")  # krakenex's contract: the whole document
        assert document["error"] == [] and isinstance(document["result"]["unixtime"], int)
        with pytest.raises(ValueError, match="at least one pair"):
            public.ticker([])


@pytest.mark.parametrize(
    ("result", "call"),
    [
        ('{"rfc1123": "Thu, 1 Jan 26 00:00:00 +0000"}', PublicClient.server_time),
        ('{"unixtime": "1767225600"}', PublicClient.server_time),
        ('{"status": 5}', PublicClient.system_status),
        ("[]", lambda public: public.ticker("XBTUSD")),
        ("true", PublicClient.asset_pairs),
    ],
)
def test_a_result_of_the_wrong_shape_is_a_format_error(
    sim: Simulator, result: str, call: Callable[[PublicClient], object]
) -> None:
    public = PublicClient(base_url=sim.url, account="clock")
    sim.set_faults(body=f'{{"error":[],"result":{result}}}', count=1)
    with pytest.raises(ResponseFormatError) as caught:
        call(public)
    assert caught.value.account == "clock" and caught.value.method


def test_a_clock_skew_sample_through_a_public_client(sim: Simulator) -> None:
    sim.set_clock_offset(-2.5)  # Kraken 2.5 s behind: local minus Kraken is +2.5 s
    sample = single_sample_skew(PublicClient(base_url=sim.url))
    assert abs(sample.offset_s - 2.5) <= sample.uncertainty_s


@pytest.mark.parametrize(
    ("faults", "method", "data", "expected"),
    [
        ({"http_status": 502}, "Time", None, HTTPStatusError),
        ({"body": "<html>maintenance</html>"}, "Time", None, ResponseFormatError),
        ({"api_error": "EService:Unavailable"}, "SystemStatus", None, ServiceUnavailableError),
        ({"drop": True}, "Time", None, ConnectionLostError),
        ({}, "Ticker", {"pair": "NOPEUSD"}, KrakenAPIError),
    ],
)
def test_public_calls_fail_with_the_errors_of_a_kraken_client(
    sim: Simulator,
    tmp_path: Path,
    faults: dict[str, Any],
    method: str,
    data: dict[str, str] | None,
    expected: type[KrakenError],
) -> None:
    seen: list[KrakenError] = []
    for client in both_clients(sim.url, tmp_path, account="prices"):
        if faults:
            sim.set_faults(count=1, **faults)
        with pytest.raises(KrakenError) as caught:
            client.call_public(method, data)
        assert type(caught.value) is expected, type(client).__name__
        assert (caught.value.account, caught.value.method) == ("prices", method)
        seen.append(caught.value)
    assert seen[0].message == seen[1].message


def test_query_public_keeps_krakenex_contract(sim: Simulator, tmp_path: Path) -> None:
    for client in both_clients(sim.url, tmp_path):
        unknown = client.query_public("Ticker", {"pair": "NOPEUSD"})
        assert unknown["error"] == ["EQuery:Unknown asset pair"]  # Kraken's errors: in the dict
        sim.set_faults(http_status=503, count=1)
        with pytest.raises(requests.HTTPError):  # HTTP trouble: requests' exceptions
            client.query_public("Time")
        client.json_options(parse_float=Decimal)
        sim.set_faults(body='{"error":[],"result":{"fee":0.26}}', count=1)
        assert client.query_public("Time")["result"]["fee"] == Decimal("0.26")


def test_the_default_timeout_and_a_call_s_own(sim: Simulator, tmp_path: Path) -> None:
    for client in both_clients(sim.url, tmp_path, timeout=(2, 0.3)):
        sim.set_faults(hang=True)
        with pytest.raises(
            KrakenTimeout, match=re.escape("2 s to connect and 0.3 s to answer")
        ) as caught:
            client.call_public("Time")
        assert isinstance(caught.value, OutcomeUnknownError)
        with pytest.raises(KrakenTimeout, match=re.escape("no answer within 0.2 s")):
            client.call_public("Time", timeout=0.2)
        sim.clear_faults()
        assert isinstance(client.call_public("Time")["unixtime"], int)
    with pytest.raises(ConfigurationError, match="timeout"):
        PublicClient(base_url=sim.url, timeout=0)


def test_nothing_listening_is_a_connection_error(tmp_path: Path) -> None:
    for client in both_clients(f"http://127.0.0.1:{free_port()}", tmp_path):
        with pytest.raises(KrakenConnectionError, match="nothing was sent") as caught:
            client.call_public("Time")
        assert not isinstance(caught.value, OutcomeUnknownError)


@pytest.mark.usefixtures("clean_env")
def test_the_api_url_is_read_and_checked_as_a_kraken_client_does(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert PublicClient().base_url == DEFAULT_API_URL
    monkeypatch.setenv(API_URL_VARIABLE, sim.url + "/")
    assert PublicClient().base_url == sim.url == KrakenClient(store_dir=tmp_path).uri
    assert PublicClient().system_status() == "online"
    assert PublicClient(base_url="http://127.0.0.1:9").base_url == "http://127.0.0.1:9"
    for bad in ("https//typo", "", "ftp://api.kraken.com"):
        monkeypatch.setenv(API_URL_VARIABLE, bad)
        with pytest.raises(ConfigurationError) as caught:
            PublicClient()
        assert caught.value.variable == API_URL_VARIABLE
        with pytest.raises(ConfigurationError):
            KrakenClient(store_dir=tmp_path)
    with pytest.raises(ConfigurationError) as given:
        PublicClient(base_url="http://api.kraken.com?x=1")
    assert given.value.variable == API_URL_VARIABLE


@pytest.mark.usefixtures("clean_env")
def test_no_key_nonce_or_data_dir_setting_is_read(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    monkeypatch.setenv("KRAKENWATCH_DATA_DIR", str(data_dir))
    monkeypatch.setenv("KRAKENWATCH_NONCE_SYNC", "sometimes")  # invalid
    monkeypatch.setenv("KRAKENWATCH_NONCE_STORE", "redis://")  # invalid
    with pytest.raises(ConfigurationError, match="KRAKENWATCH_NONCE_SYNC"):
        KrakenClient(base_url=sim.url)  # a KrakenClient reads them, even for public calls
    public = PublicClient(base_url=sim.url)
    assert public.system_status() == "online"
    assert not data_dir.exists()


def test_calls_are_reported_to_the_observer(sim: Simulator) -> None:
    recorder = Recorder()
    public = PublicClient(base_url=sim.url, account="prices", observer=recorder)
    public.server_time()
    sim.set_faults(drop=True, count=1)
    with pytest.raises(ConnectionLostError):
        public.ticker("XBTUSD")
    ok, lost = recorder.calls
    assert recorder.refreshes == []  # a public call never refreshes a nonce
    assert (ok.account, ok.method, ok.private, ok.key_id, ok.outcome) == (
        "prices",
        "Time",
        False,
        "",
        "ok",
    )
    assert (lost.method, lost.outcome, lost.outcome_unknown) == ("Ticker", "connection_lost", True)
    assert isinstance(lost.error, ConnectionLostError) and lost.nonce is None


def test_repr_names_the_url_and_the_label() -> None:
    public = PublicClient(base_url="http://127.0.0.1:9", account="clock")
    assert repr(public) == "PublicClient(account='clock', base_url='http://127.0.0.1:9')"

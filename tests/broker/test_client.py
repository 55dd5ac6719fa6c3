"""KrakenClient against the simulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import krakenex
import pytest
import requests

from broker import (
    CallEvent,
    ConfigurationError,
    InvalidNonceError,
    KrakenClient,
    NonceUnitDowngradeError,
    RefreshEvent,
)
from broker.signing import form_body
from simulator import OtherWriter
from testkit.observers import Recorder
from testkit.rawclient import encode_private_request
from testkit.seed import SeedNonceGenerator
from testkit.sim import make_key, one_key_simulator

VECTOR_SECRET = (
    "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
)
VECTOR_BODY = "nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
VECTOR_SIGN = (
    "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
)


def test_official_vector_through_the_client_signing_code() -> None:
    params = {"ordertype": "limit", "pair": "XBTUSD", "price": 37500, "type": "buy", "volume": 1.25}
    body, headers = encode_private_request(
        "/0/private/AddOrder", 1616492376594, params, "some-key", VECTOR_SECRET
    )
    assert body == VECTOR_BODY
    assert headers["API-Sign"] == VECTOR_SIGN
    assert headers["API-Key"] == "some-key"
    # the body a KrakenClient signs for these parameters is the vector's, byte for byte
    assert form_body("AddOrder", params, account="MASTER")(1616492376594) == VECTOR_BODY


def test_drop_in_contract_and_typed_calls(tmp_path: Path) -> None:
    with one_key_simulator("dropin") as (sim, key, secret):
        api = KrakenClient(key, secret, base_url=sim.url, store_dir=tmp_path)
        assert isinstance(api, krakenex.API)
        data = {"asset": "ZUSD"}
        doc = api.query_private("Balance", data)
        assert doc == {"error": [], "result": {"ZUSD": "1000.0000", "USDT": "50.00000000"}}
        assert data == {"asset": "ZUSD"}, "the caller's dict must not be mutated"
        assert api.call_private("Balance") == {"ZUSD": "1000.0000", "USDT": "50.00000000"}
        assert isinstance(api.query_public("Time")["result"]["unixtime"], int)
        # krakenex contract: API errors come back in the dict, not raised
        doc = api.query_private(
            "AddOrder", {"pair": "XBTUSD", "type": "buy", "ordertype": "market", "volume": "1"}
        )
        assert doc["error"] == ["EOrder:Insufficient funds"]  # 1000 USD do not buy 1 XBT
        assert "result" not in doc
        assert api.call_private(
            "AddOrder",
            {
                "pair": "XBTUSD",
                "type": "buy",
                "ordertype": "market",
                "volume": "1",
                "validate": "true",
            },
        )["descr"]
        # krakenex contract: HTTP trouble raises requests' exceptions from query_*
        sim.set_faults(http_status=502, count=1)
        with pytest.raises(requests.HTTPError):
            api.query_private("Balance")


def test_list_values_are_refused_before_sending(tmp_path: Path) -> None:
    with one_key_simulator("lists") as (sim, key, secret):
        api = KrakenClient(key, secret, base_url=sim.url, store_dir=tmp_path)
        with pytest.raises(ConfigurationError, match="'pair' is a list"):
            api.query_private("OpenOrders", {"pair": ["XBTUSD", "ETHUSD"]})
        assert sim.stats(key).requests == 0


def test_timeout_is_never_none(tmp_path: Path) -> None:
    api = KrakenClient("k", "c2VjcmV0", store_dir=tmp_path)
    assert api.timeout == 10.0
    with pytest.raises(ConfigurationError, match="timeout"):
        KrakenClient("k", "c2VjcmV0", store_dir=tmp_path, timeout=None)  # type: ignore[arg-type]


def _hammer(call: Callable[[], list[str]], threads: int, per_thread: int) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(per_thread):
            errors = call()
            with lock:
                outcomes[errors[0] if errors else "ok"] += 1

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return outcomes


def test_eight_threads_no_invalid_nonce_while_seed_generator_fails(tmp_path: Path) -> None:
    with one_key_simulator("race", latency_ms=(0, 30)) as (sim, key, secret):
        client = KrakenClient(key, secret, base_url=sim.url, store_dir=tmp_path)
        ours = _hammer(lambda: client.query_private("Balance")["error"], 8, 25)
        assert ours == Counter({"ok": 200})
        assert sim.stats(key).max_concurrency == 1

    with one_key_simulator("race-seed", latency_ms=(0, 30)) as (sim, key, secret):
        seed_api = krakenex.API(key, secret)
        seed_api.uri = sim.url
        SeedNonceGenerator().install(seed_api)
        theirs = _hammer(lambda: seed_api.query_private("Balance", timeout=10)["error"], 8, 25)
        assert theirs["EAPI:Invalid nonce"] > 0, theirs


def test_two_labels_one_key_share_one_sequence(tmp_path: Path) -> None:
    with one_key_simulator("two-labels", latency_ms=(0, 10)) as (sim, key, secret):
        a = KrakenClient(key, secret, account="MASTER", base_url=sim.url, store_dir=tmp_path)
        b = KrakenClient(key, secret, account="USER:alias", base_url=sim.url, store_dir=tmp_path)
        flip = iter(range(10**6))
        lock = threading.Lock()

        def either() -> list[str]:
            with lock:
                client = a if next(flip) % 2 else b
            errors: list[str] = client.query_private("Balance")["error"]
            return errors

        outcomes = _hammer(either, 6, 15)
        assert outcomes == Counter({"ok": 90})
        assert sim.stats(key).invalid_nonce == 0
        assert a.key_id == b.key_id


def test_refresh_never_moves_backwards_and_is_reported(tmp_path: Path) -> None:
    with one_key_simulator("refresh") as (sim, key, secret):
        recorder = Recorder()
        api = KrakenClient(key, secret, base_url=sim.url, store_dir=tmp_path, observer=recorder)
        api.call_private("Balance")
        first = api.refresh("test")
        second = api.refresh("test")
        assert second.baseline >= first.baseline >= recorder.calls[0].nonce  # type: ignore[operator]
        assert [r.reason for r in recorder.refreshes] == ["test", "test"]
        assert recorder.calls[0].outcome == "ok" and recorder.calls[0].private


def test_previous_session_nonce_retries_once_and_diagnoses(tmp_path: Path) -> None:
    with one_key_simulator("previous", last_nonce="now_us+30s") as (sim, key, secret):
        recorder = Recorder()
        api = KrakenClient(key, secret, base_url=sim.url, store_dir=tmp_path, observer=recorder)
        with pytest.raises(InvalidNonceError) as caught:
            api.connect()
        assert caught.value.code == "EAPI:Invalid nonce"
        assert caught.value.diagnosis == "restart_below_high_water"
        assert sim.stats(key).invalid_nonce == 2, "exactly one retry, no loop"
        assert [r.reason for r in recorder.refreshes] == ["connect", "retry after invalid nonce"]
        assert [c.outcome for c in recorder.calls] == ["invalid_nonce", "invalid_nonce"]


def test_unit_downgrade_refused_before_sending(tmp_path: Path) -> None:
    with one_key_simulator("downgrade") as (sim, key, secret):
        KrakenClient(
            key, secret, base_url=sim.url, store_dir=tmp_path, nonce_unit="us"
        ).call_private("Balance")
        before = sim.stats(key).requests
        recorder = Recorder()
        coarse = KrakenClient(
            key, secret, base_url=sim.url, store_dir=tmp_path, nonce_unit="ms", observer=recorder
        )
        with pytest.raises(NonceUnitDowngradeError, match="refusing to send ms nonces"):
            coarse.call_private("Balance")
        assert sim.stats(key).requests == before
        assert recorder.calls[-1].outcome == "nonce_unit_downgrade"
        # upgrading to a finer unit is allowed (one-way)
        fine = KrakenClient(key, secret, base_url=sim.url, store_dir=tmp_path, nonce_unit="ns")
        assert fine.call_private("Balance")["ZUSD"] == "1000.0000"
        assert fine.nonce_status().unit == "ns"


def test_observer_failure_never_breaks_a_call(tmp_path: Path) -> None:
    class Broken:
        def on_call(self, event: CallEvent) -> None:
            raise RuntimeError("observer bug")

        def on_refresh(self, event: RefreshEvent) -> None:
            raise RuntimeError("observer bug")

    with one_key_simulator("broken-observer") as (sim, key, secret):
        api = KrakenClient(key, secret, base_url=sim.url, store_dir=tmp_path, observer=Broken())
        assert api.connect()["USDT"] == "50.00000000"


def test_secret_never_in_repr_or_errors(tmp_path: Path) -> None:
    key, secret = make_key("repr")
    api = KrakenClient(key, secret, store_dir=tmp_path, base_url="http://127.0.0.1:9")
    assert key not in repr(api) and secret not in repr(api)
    with pytest.raises(Exception) as caught:
        api.call_private("Balance", timeout=2)
    text = f"{caught.value!s} {caught.value!r}"
    assert secret not in text and key not in text


def test_the_diagnosis_follows_the_evidence_across_reconnects(tmp_path: Path) -> None:
    """Once our own calls were accepted, a rejection means another writer, also after the
    reconnect's refresh (which once made it read as a restart below the high-water mark)."""
    with one_key_simulator("evidence") as (sim, key, secret):
        api = KrakenClient(key, secret, base_url=sim.url, store_dir=tmp_path)
        assert api.connect()["ZUSD"]  # a fresh store: no history, but this call is accepted
        sim.update_key(key, other_writer=OtherWriter(interval_ms=50, lead_ms=5000))
        sim.wait_for(key, lambda s: s.other_writer_nonces >= 1)
        with pytest.raises(InvalidNonceError) as first:
            api.call_private("Balance")
        assert first.value.diagnosis == "second_writer"
        with pytest.raises(InvalidNonceError) as after_reconnect:
            api.connect()  # refresh, call, refresh, retry: the other writer is still ahead
        assert after_reconnect.value.diagnosis == "second_writer"
        sim.update_key(key, other_writer=None)

"""Every error kind, produced by the simulator over real HTTP, lands in its own class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from broker import (
    ConnectionLostError,
    HTTPStatusError,
    InvalidArgumentsError,
    InvalidKeyError,
    InvalidNonceError,
    InvalidSignatureError,
    KrakenAPIError,
    KrakenClient,
    KrakenError,
    KrakenTimeout,
    MarketRestrictedError,
    PermissionDeniedError,
    RateLimitError,
    ServiceUnavailableError,
    TemporaryLockoutError,
    ThrottledError,
)
from broker.codes import api_error_from_codes, error_class_for_code
from testkit.sim import make_key, one_key_simulator


@pytest.mark.parametrize(
    ("faults", "expected", "code"),
    [
        ({"api_error": "EService:Unavailable"}, ServiceUnavailableError, "EService:Unavailable"),
        ({"api_error": "EService:Busy"}, ServiceUnavailableError, "EService:Busy"),
        (
            {"api_error": "EService:Market in cancel_only mode"},
            MarketRestrictedError,
            "EService:Market in cancel_only mode",
        ),
        ({"api_error": "EFuture:Something new"}, KrakenAPIError, "EFuture:Something new"),
        ({"http_status": 503}, HTTPStatusError, None),
        ({"drop": True}, ConnectionLostError, None),  # sent, then cut: outcome unknown
    ],
)
def test_faults_are_classified(
    tmp_path: Path, faults: dict[str, Any], expected: type[KrakenError], code: str | None
) -> None:
    with one_key_simulator("faults") as (sim, key, secret):
        api = KrakenClient(key, secret, base_url=sim.url, store_dir=tmp_path)
        sim.set_faults(**faults)
        with pytest.raises(expected) as caught:
            api.call_private("Balance")
        assert type(caught.value) is expected
        assert getattr(caught.value, "code", None) == code
        assert caught.value.account == "MASTER" and caught.value.method == "Balance"
        assert caught.value.remedy and caught.value.explanation
        if isinstance(caught.value, HTTPStatusError):
            assert caught.value.status == 503 and "503" in caught.value.body_excerpt


def test_hang_times_out(tmp_path: Path) -> None:
    with one_key_simulator("hang") as (sim, key, secret):
        api = KrakenClient(key, secret, base_url=sim.url, store_dir=tmp_path, timeout=0.5)
        sim.set_faults(hang=True)
        with pytest.raises(KrakenTimeout):
            api.call_private("Balance")
        sim.clear_faults()


def test_key_signature_permission_arguments(tmp_path: Path) -> None:
    with one_key_simulator("auth", permissions=["funds"]) as (sim, key, secret):
        other_key, other_secret = make_key("unknown")
        with pytest.raises(InvalidKeyError, match="EAPI:Invalid key"):
            KrakenClient(other_key, secret, base_url=sim.url, store_dir=tmp_path).call_private(
                "Balance"
            )
        with pytest.raises(InvalidSignatureError) as caught:
            KrakenClient(key, other_secret, base_url=sim.url, store_dir=tmp_path).call_private(
                "Balance"
            )
        assert secret not in str(caught.value) and other_secret not in repr(caught.value)
        api = KrakenClient(key, secret, base_url=sim.url, store_dir=tmp_path)
        with pytest.raises(PermissionDeniedError, match="EGeneral:Permission denied"):
            api.call_private("OpenOrders")
        with pytest.raises(InvalidArgumentsError, match="EGeneral:Unknown method"):
            api.call_private("NoSuchMethod")


def test_rate_limit_and_lockout(tmp_path: Path) -> None:
    with one_key_simulator("limits", tier="starter", lockout_threshold=3, lockout_seconds=60) as (
        sim,
        key,
        secret,
    ):
        api = KrakenClient(key, secret, base_url=sim.url, store_dir=tmp_path)
        with pytest.raises(RateLimitError):
            for _ in range(40):
                api.call_private("Balance")
        _, wrong = make_key("wrong-secret")
        bad = KrakenClient(key, wrong, base_url=sim.url, store_dir=tmp_path)
        for _ in range(3):
            with pytest.raises(InvalidSignatureError):
                bad.call_private("Balance")
        with pytest.raises(TemporaryLockoutError) as caught:
            api.call_private("Balance")
        assert caught.value.retryable


def test_unknown_and_known_codes_map_by_prefix() -> None:
    assert error_class_for_code("EGeneral:Invalid arguments:volume") is InvalidArgumentsError
    assert error_class_for_code("EAPI:Invalid nonce") is not KrakenAPIError
    assert error_class_for_code("EAPI:Invalid nonceX") is KrakenAPIError
    assert issubclass(KrakenTimeout, KrakenError)


@pytest.mark.parametrize(
    ("codes", "expected", "code"),
    [
        # classified by the most severe entry, whatever the order
        (
            ["EAPI:Invalid nonce", "EGeneral:Permission denied"],
            PermissionDeniedError,
            "EGeneral:Permission denied",
        ),
        (
            ["EService:Busy", "EGeneral:Temporary lockout"],
            TemporaryLockoutError,
            "EGeneral:Temporary lockout",
        ),
        (["WGeneral:Deprecated", "EAPI:Invalid key"], InvalidKeyError, "EAPI:Invalid key"),
        # codes that had no class
        (["EService:Deadline elapsed"], ServiceUnavailableError, "EService:Deadline elapsed"),
        (["EGeneral:Too many requests"], RateLimitError, "EGeneral:Too many requests"),
        (
            ["EService:Market in limit_only mode"],
            MarketRestrictedError,
            "EService:Market in limit_only mode",
        ),
        (["EAPI:Invalid nonce window"], InvalidNonceError, "EAPI:Invalid nonce window"),
        (["EService: Throttled: 1767225600"], ThrottledError, "EService: Throttled: 1767225600"),
        # unknown codes keep their raw string; an unknown EService code is Kraken-side
        (["EFunding:Unknown reference id"], KrakenAPIError, "EFunding:Unknown reference id"),
        (["EService:Something new"], ServiceUnavailableError, "EService:Something new"),
    ],
)
def test_error_lists_are_classified_by_their_most_severe_code(
    codes: list[str], expected: type, code: str
) -> None:
    error = api_error_from_codes(codes, account="MASTER", method="AddOrder")
    assert type(error) is expected
    assert error.code == code and error.codes == codes
    assert error.remedy and error.explanation


def test_throttled_says_when_to_retry_and_is_retryable() -> None:
    error = api_error_from_codes(["EService:Throttled:1767225600"])
    assert isinstance(error, ThrottledError) and isinstance(error, RateLimitError)
    assert error.retry_at == 1767225600.0 and error.retryable


def test_any_json_result_is_valid_and_every_code_is_kept(tmp_path: Path) -> None:
    with one_key_simulator("results") as (sim, key, secret):
        api = KrakenClient(key, secret, base_url=sim.url, store_dir=tmp_path)
        sim.set_faults(body='{"error":[],"result":true}', count=1)  # e.g. WithdrawCancel
        assert api.call_private("Balance") is True
        sim.set_faults(body='{"error":[],"result":"ok"}', count=1)
        assert api.call_private("Balance") == "ok"
        sim.set_faults(
            body='{"error":["EAPI:Invalid nonce","EGeneral:Permission denied"]}', count=1
        )
        with pytest.raises(PermissionDeniedError) as caught:
            api.call_private("Balance")
        assert caught.value.codes == ["EAPI:Invalid nonce", "EGeneral:Permission denied"]

"""The settings every part shares, read in one place: lenient for the dashboard, strict for the
gateway, each bad value naming its variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker import ConfigurationError
from broker.sharedsettings import read_shared_settings

BAD = [
    ("KRAKEN_API_URL", "htps://api.kraken.com"),
    ("KRAKENWATCH_TIER", "gold"),
    ("KRAKENWATCH_REQUEST_TIMEOUT", "soon"),
    ("KRAKENWATCH_REQUEST_TIMEOUT", "1000000"),
    ("KRAKENWATCH_NONCE_SYNC", "perhaps"),
    ("KRAKENWATCH_NONCE_STORE", "postgres://db:5432/0"),
]


def test_the_defaults_and_the_nonce_dir_in_the_data_dir(tmp_path: Path) -> None:
    shared = read_shared_settings({"KRAKENWATCH_DATA_DIR": str(tmp_path)})
    assert shared.api_url == "https://api.kraken.com" and shared.data_dir == tmp_path
    assert shared.nonce_dir == tmp_path / "nonces"
    assert (shared.nonce_store, shared.nonce_sync, shared.tier) == ("file", True, "starter")
    assert shared.request_timeout_s == 10.0 and shared.problems == ()


def test_every_value_is_read(tmp_path: Path) -> None:
    shared = read_shared_settings(
        {
            "KRAKEN_API_URL": "http://127.0.0.1:9/",
            "KRAKENWATCH_DATA_DIR": str(tmp_path),
            "KRAKENWATCH_TIER": "Pro",
            "KRAKENWATCH_REQUEST_TIMEOUT": "2.5",
            "KRAKENWATCH_NONCE_SYNC": "off",
            "KRAKENWATCH_NONCE_STORE": "redis://127.0.0.1:9/0",
        },
        strict=True,
    )
    assert shared.api_url == "http://127.0.0.1:9" and shared.tier == "pro"
    assert shared.request_timeout_s == 2.5 and shared.nonce_sync is False
    assert shared.nonce_store == "redis://127.0.0.1:9/0"


@pytest.mark.parametrize(("variable", "value"), BAD)
def test_lenient_reading_names_the_variable_and_carries_on(
    tmp_path: Path, variable: str, value: str
) -> None:
    shared = read_shared_settings({"KRAKENWATCH_DATA_DIR": str(tmp_path), variable: value})
    assert [p.variable for p in shared.problems] == [variable]
    assert shared.data_dir == tmp_path


@pytest.mark.parametrize(("variable", "value"), BAD)
def test_strict_reading_refuses_naming_the_variable(
    tmp_path: Path, variable: str, value: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        read_shared_settings({"KRAKENWATCH_DATA_DIR": str(tmp_path), variable: value}, strict=True)
    assert caught.value.variable == variable and variable in str(caught.value)


def test_a_bad_url_sends_nothing_and_a_bad_store_is_kept_to_fail_closed(tmp_path: Path) -> None:
    shared = read_shared_settings(
        {
            "KRAKENWATCH_DATA_DIR": str(tmp_path),
            "KRAKEN_API_URL": "api.kraken.com",
            "KRAKENWATCH_NONCE_STORE": "redis://",
            "KRAKENWATCH_TIER": "gold",
        }
    )
    assert shared.api_url is None and shared.nonce_store == "redis://" and shared.tier == "starter"
    assert "using starter" in str(shared.problems[-1])

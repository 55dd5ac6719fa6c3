"""Malformed answers from the network and malformed configuration: classified, never a crash."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from broker import KrakenClient, KrakenError, ResponseFormatError
from broker.balances import parse_balances
from dashboard.cli import main
from dashboard.config import load_settings
from simulator import Simulator, builtin_scenario, scenario_environment


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("this is not json", ResponseFormatError),
        ('{"error":[],"result":{"ZUSD":"1.0', ResponseFormatError),  # truncated
        ("[1, 2, 3]", ResponseFormatError),
        ('{"error":"EAPI:Invalid key"}', ResponseFormatError),  # wrong type for error
        ('{"error":[],"result":"ZUSD 1.0"}', ResponseFormatError),
        ('{"error":[],"result":{"ZUSD":1.5}}', ResponseFormatError),  # a float balance
        ('{"error":[],"result":{"ZUSD":true}}', ResponseFormatError),
        ('{"error":[],"result":{"ZUSD":{"a":1}}}', ResponseFormatError),
        ('{"error":[],"result":{"ZUSD":"12abc"}}', ResponseFormatError),
        ('{"error":[],"result":{"ZUSD":"' + "9" * 500 + '"}}', ResponseFormatError),
    ],
)
def test_malformed_balance_answers_are_classified(
    tmp_path: Path, body: str, error: type[KrakenError]
) -> None:
    scenario = builtin_scenario("healthy")
    with Simulator(scenario).start() as sim:
        spec = scenario.keys[0]
        api = KrakenClient(spec.key, spec.secret, base_url=sim.url, store_dir=tmp_path)
        sim.set_faults(body=body, scope="private")
        with pytest.raises(KrakenError) as caught:
            parse_balances(api.call_private("Balance"), account="MASTER")
        assert type(caught.value) is error


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ({}, {}),  # missing result / no assets: an empty balance, not a crash
        (
            {
                "ZUSD": "1.0000",
                "XNEW.F": "0.5",
                "FUTURECOIN": "123456789012345678901234567890.123456789",
            },
            {
                "ZUSD": "1.0000",
                "XNEW.F": "0.5",
                "FUTURECOIN": "123456789012345678901234567890.123456789",
            },
        ),
        ({"ZUSD": 12}, {"ZUSD": "12"}),  # an integer is exact
    ],
)
def test_tolerant_parse_keeps_exact_strings(
    result: dict[str, object], expected: dict[str, str]
) -> None:
    assert parse_balances(result) == expected


def test_extra_fields_and_missing_result_are_tolerated(tmp_path: Path) -> None:
    scenario = builtin_scenario("healthy")
    with Simulator(scenario).start() as sim:
        spec = scenario.keys[0]
        api = KrakenClient(spec.key, spec.secret, base_url=sim.url, store_dir=tmp_path)
        sim.set_faults(
            body='{"error":[],"result":{"ZUSD":"5.0000"},"extra":{"x":1}}', scope="private"
        )
        assert parse_balances(api.call_private("Balance")) == {"ZUSD": "5.0000"}
        sim.set_faults(body='{"error":[]}', scope="private")
        assert parse_balances(api.call_private("Balance")) == {}
        sim.set_faults(body='{"error":[],"result":{"unixtime":"soon"}}', scope="public")
        with pytest.raises(ResponseFormatError, match="unixtime"):
            from broker import estimate_clock_skew

            estimate_clock_skew(api, max_probes=1)


SETTINGS_CASES = [
    ("KRAKENWATCH_POLL_INTERVAL", ["", "abc", "-5", "0", "1e9", "nan"]),
    ("KRAKENWATCH_SKEW_INTERVAL", ["x", "-1", "inf"]),
    ("KRAKENWATCH_MAX_SKEW", ["x", "0", "-1"]),
    ("KRAKENWATCH_FRESHNESS", ["x", "0"]),
    ("KRAKENWATCH_REQUEST_TIMEOUT", ["x", "0", "1000000"]),
    ("KRAKENWATCH_LOCKOUT_WAIT", ["x", "0"]),
    ("KRAKENWATCH_RETENTION_DAYS", ["x", "0", "99999"]),
    ("KRAKENWATCH_PROBE_TRADE", ["maybe", "2"]),
    ("KRAKENWATCH_BALANCE_METRICS", ["perhaps"]),
    ("KRAKENWATCH_TIER", ["gold"]),
    ("KRAKENWATCH_BOT_LOG_PATTERNS", ["/nonexistent/patterns.toml"]),
    ("KRAKENWATCH_PASSWORD", ["short"]),
    ("KRAKEN_API_URL", ["not a url", "ftp://x", "http://"]),
]


@pytest.mark.parametrize(
    ("variable", "value"), [(v, x) for v, values in SETTINGS_CASES for x in values if x]
)
def test_every_setting_with_a_bad_value_is_named(variable: str, value: str) -> None:
    settings = load_settings({variable: value}, use_dotenv=False)
    named = [p for p in settings.all_problems if p.variable == variable]
    assert named, f"{variable}={value!r} was accepted silently"
    assert value not in ("short",) or "12 characters" in named[0].message


def test_check_exits_2_for_bad_settings_and_still_verifies_accounts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None
) -> None:
    monkeypatch.chdir(tmp_path)
    scenario = builtin_scenario("healthy")
    with Simulator(scenario).start() as sim:
        env = {
            **scenario_environment(scenario, sim.url),
            "KRAKENWATCH_DATA_DIR": str(tmp_path),
            "KRAKENWATCH_MAX_SKEW": "-3",
            "KRAKEN_USER_DAIVON_NONCE_UNIT": "seconds",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        out, err = io.StringIO(), io.StringIO()
        monkeypatch.setattr(sys, "stdout", out)
        monkeypatch.setattr(sys, "stderr", err)
        code = main(["check", "--json", "--timeout", "10"])
    assert code == 2
    assert (
        "KRAKENWATCH_MAX_SKEW" in err.getvalue()
        and "KRAKEN_USER_DAIVON_NONCE_UNIT" in err.getvalue()
    )
    assert "Traceback" not in err.getvalue()
    doc = json.loads(out.getvalue())
    states = {a["account"]: a["state"] for a in doc["accounts"]}
    assert states == {
        "MASTER": "connected",
        "USER:tania_gilbert": "connected",
        "USER:daivon": "invalid_config",
    }


def test_bad_env_file_and_bad_scenario_file_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--env-file", str(tmp_path / "missing.env")]) == 2
    assert "missing.env" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text('tier = "diamond"\n')
    assert main(["simulator", "--scenario", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.toml" in err and "tier" in err and "Traceback" not in err
    store_dir = tmp_path / "nonces"
    store_dir.mkdir()
    key = builtin_scenario("healthy").keys[0]
    from broker.signing import key_id

    (store_dir / f"{key_id(key.key)}.nonce").write_text("garbage here\n")
    with pytest.raises(KrakenError, match="corrupt"):
        KrakenClient(key.key, key.secret, store_dir=store_dir).call_private("Balance")

"""`krakenwatch check` against the simulator: exit codes, failing checks and remedies."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from broker import InvalidKeyError, InvalidSignatureError, PermissionDeniedError
from dashboard.cli import main
from simulator import fake_secret
from testkit.sim import scenario_simulator

MASTER_REQUIRED = (
    "connected",
    "balance_fetched",
    "no_invalid_nonce",
    "permission_query_funds",
    "permission_query_orders",
)


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None) -> Path:
    """No KRAKEN_* from the outer environment, no ./.env, a private data dir."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KRAKENWATCH_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def run_check(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[int, dict[str, Any], str]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    out, err = io.StringIO(), io.StringIO()
    sys_out, sys_err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        code = main(["check", "--json", "--timeout", "10", *args])
    finally:
        sys.stdout, sys.stderr = sys_out, sys_err
    text = out.getvalue()
    return code, json.loads(text) if text.strip() else {}, err.getvalue()


def checks_of(doc: dict[str, Any], account: str | None = None) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in doc["checks"] if account is None or c["account"] == account}


def test_healthy_scenario_passes_every_check(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with scenario_simulator("healthy") as (_sim, env):
        code, doc, _ = run_check(env, monkeypatch)
    assert code == 0, doc
    assert doc["ok"] is True
    assert [a["account"] for a in doc["accounts"]] == [
        "MASTER",
        "USER:daivon",
        "USER:tania_gilbert",
    ]
    required = [c for c in doc["checks"] if c["required"]]
    assert required and all(c["status"] == "pass" for c in required), required
    master = doc["accounts"][0]
    assert master["state"] == "connected"
    assert master["balances"]["ZUSD"] == "1234.5600"
    assert master["key"].count("…") == 1 and master["error"] is None
    assert abs(doc["clock_skew_seconds"]) < 0.5


def test_permission_denied_fails_one_account_others_verified(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with scenario_simulator("demo") as (_sim, env):
        code, doc, _ = run_check(env, monkeypatch)
    assert code == 1 and doc["ok"] is False
    tania = checks_of(doc, "USER:tania_gilbert")
    assert tania["permission_query_orders"]["status"] == "fail"
    assert tania["permission_query_orders"]["remedy"] == PermissionDeniedError.remedy
    assert tania["connected"]["status"] == "pass"
    assert {
        n: c["status"] for n, c in checks_of(doc, "MASTER").items() if c["required"]
    } == dict.fromkeys(MASTER_REQUIRED, "pass")


@pytest.mark.parametrize(
    ("breakage", "remedy"),
    [("key", InvalidKeyError.remedy), ("secret", InvalidSignatureError.remedy)],
)
def test_bad_credentials_fail_with_remedy(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, breakage: str, remedy: str
) -> None:
    with scenario_simulator("healthy") as (_sim, env):
        if breakage == "key":
            env["KRAKEN_USER_DAIVON_API_KEY"] = "SIM" + "x" * 53
        else:
            env["KRAKEN_USER_DAIVON_API_SECRET"] = fake_secret("not the right one")
        code, doc, _ = run_check(env, monkeypatch)
    assert code == 1
    daivon = checks_of(doc, "USER:daivon")
    assert daivon["connected"]["status"] == "fail"
    assert daivon["connected"]["remedy"] == remedy
    assert "next attempt" not in daivon["connected"]["detail"], "check makes one attempt"
    assert daivon["balance_fetched"]["status"] == "fail"
    assert doc["accounts"][1]["balances"] is None, "an unreadable balance is never a number"
    assert checks_of(doc, "MASTER")["connected"]["status"] == "pass"


def test_previous_session_nonce_is_diagnosed(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with scenario_simulator("previous-session-nonce") as (sim, env):
        code, doc, _ = run_check(env, monkeypatch)
        assert sim.total_stats().invalid_nonce == 2, "refresh + one retry, no loop"
    assert code == 1
    nonce = checks_of(doc, "MASTER")["no_invalid_nonce"]
    assert nonce["status"] == "fail" and "restart_below_high_water" in nonce["detail"]
    assert "previous session" in nonce["remedy"]
    assert doc["accounts"][0]["error"]["diagnosis"] == "restart_below_high_water"


def test_unit_downgrade_is_a_configuration_error(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with scenario_simulator("healthy") as (sim, env):
        assert run_check(env, monkeypatch)[0] == 0  # the store now knows these keys used µs
        env["KRAKEN_MASTER_NONCE_UNIT"] = "ms"
        before = sim.total_stats().requests
        code, doc, _ = run_check(env, monkeypatch)
        master_requests = sim.total_stats().requests - before
    assert code == 2
    master = doc["accounts"][0]
    assert master["state"] == "invalid_config"
    assert master["error"]["kind"] == "nonce_unit_downgrade"
    assert checks_of(doc, "USER:daivon")["connected"]["status"] == "pass"
    assert master_requests > 0  # the other accounts were still verified


def test_skewed_server_clock_fails_the_skew_check(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with scenario_simulator("healthy", clock_offset_s=4.2) as (_sim, env):
        code, doc, _ = run_check(env, monkeypatch)
    assert code == 1
    skew = checks_of(doc)["clock_skew"]
    assert skew["status"] == "fail" and "NTP" in skew["remedy"]
    # the true skew (local - Kraken = -4.2 s) lies within what the document claims
    assert abs(doc["clock_skew_seconds"] + 4.2) <= doc["clock_skew_uncertainty_seconds"] + 0.01


@pytest.mark.parametrize(
    ("clock_offset_s", "max_skew_s", "verdict", "one_probe"),
    [
        (4.2, 1.0, "fail", True),  # far outside the bound: decided by the first probe
        (-4.2, 1.0, "fail", True),
        (0.0, 5.0, "pass", True),  # far inside the bound: decided by the first probe
        (0.6, 0.2, "fail", None),  # near the bound: one probe or more, the right verdict
        (0.0, 0.3, "pass", False),  # the bound is narrower than one probe's interval
    ],
)
def test_check_samples_the_clock_until_the_bound_is_decided(
    isolated: Path,
    monkeypatch: pytest.MonkeyPatch,
    clock_offset_s: float,
    max_skew_s: float,
    verdict: str,
    one_probe: bool | None,
) -> None:
    with scenario_simulator("healthy", clock_offset_s=clock_offset_s) as (_sim, env):
        code, doc, _ = run_check({**env, "KRAKENWATCH_MAX_SKEW": str(max_skew_s)}, monkeypatch)
    assert checks_of(doc)["clock_skew"]["status"] == verdict
    assert code == (0 if verdict == "pass" else 1)
    offset, uncertainty = doc["clock_skew_seconds"], doc["clock_skew_uncertainty_seconds"]
    truth = -clock_offset_s  # local - Kraken
    assert abs(offset - truth) <= uncertainty + 0.01, "the reported interval holds the truth"
    # Kraken answers whole seconds: one probe is ± 0.5 s or more, and the document says so
    assert one_probe is None or (uncertainty >= 0.5) == one_probe


def test_503s_fail_connected_with_remedy(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with scenario_simulator("healthy") as (sim, env):
        sim.set_faults(http_status=503, scope="private")
        code, doc, _ = run_check(env, monkeypatch)
    assert code == 1
    connected = checks_of(doc, "MASTER")["connected"]
    assert connected["status"] == "fail" and "503" in connected["detail"]
    assert "status.kraken.com" in connected["remedy"]


def test_no_accounts_exit_2_and_says_how(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run_check({}, monkeypatch)
    assert code == 2
    assert "KRAKEN_MASTER_API_KEY" in err


def test_bad_account_exit_2_others_verified(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with scenario_simulator("healthy") as (_sim, env):
        env["KRAKEN_USER_DAIVON_API_SECRET"] = "%%% not base64"
        code, doc, err = run_check(env, monkeypatch)
    assert code == 2
    assert "KRAKEN_USER_DAIVON_API_SECRET" in err
    assert checks_of(doc)["configuration"]["status"] == "fail"
    assert [(a["account"], a["state"]) for a in doc["accounts"]] == [
        ("MASTER", "connected"),
        ("USER:tania_gilbert", "connected"),
        ("USER:daivon", "invalid_config"),
    ]
    daivon = checks_of(doc, "USER:daivon")["connected"]
    assert daivon["status"] == "fail" and "KRAKEN_USER_DAIVON_API_SECRET" in daivon["detail"]
    assert {
        n: c["status"] for n, c in checks_of(doc, "MASTER").items() if c["required"]
    } == dict.fromkeys(MASTER_REQUIRED, "pass")


def test_hanging_kraken_cli_finishes_within_timeout(isolated: Path) -> None:
    with scenario_simulator("healthy") as (sim, env):
        sim.set_faults(hang=True)
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "dashboard.cli", "check", "--timeout", "3"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
            cwd=isolated,
        )
        elapsed = time.monotonic() - started
        sim.clear_faults()
    assert proc.returncode == 1, proc.stderr
    assert "NOT VERIFIED" in proc.stdout
    assert elapsed < 3 + 5, f"took {elapsed:.1f} s"  # the deadline plus interpreter start-up
    for _, secret in ((k, v) for k, v in env.items() if k.endswith("_SECRET")):
        assert secret not in proc.stdout + proc.stderr


def test_bot_log_checks_are_skipped_by_one_shot_check(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = isolated / "bot.log"
    log.write_text("✅ KRAKEN PRO CONNECTED (MASTER)\n")
    with scenario_simulator("healthy") as (_, env):
        code, doc, _ = run_check({**env, "KRAKENWATCH_BOT_LOG": str(log)}, monkeypatch)
    assert code == 0
    bot = {c["name"]: c for c in doc["checks"] if c["name"].startswith("bot_")}
    assert len(bot) == 4 and all(
        c["status"] == "skipped" and not c["required"] for c in bot.values()
    )
    assert "krakenwatch up" in bot["bot_kraken_connected"]["detail"]


def test_trade_permission_is_probed_only_when_asked(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with scenario_simulator("healthy") as (sim, env):
        sim.update_key(env["KRAKEN_USER_DAIVON_API_KEY"], permissions=["funds", "orders"])
        code, doc, _ = run_check(env, monkeypatch)
        assert code == 0
        assert checks_of(doc, "USER:daivon")["permission_create_orders"]["status"] == "skipped"
        assert sim.total_stats().requests > 0
        before = sim.stats(env["KRAKEN_MASTER_API_KEY"]).requests
        code, doc, _ = run_check({**env, "KRAKENWATCH_PROBE_TRADE": "1"}, monkeypatch)
        master_calls = sim.stats(env["KRAKEN_MASTER_API_KEY"]).requests - before
    assert code == 1
    assert checks_of(doc, "MASTER")["permission_create_orders"]["status"] == "pass"
    daivon = checks_of(doc, "USER:daivon")["permission_create_orders"]
    assert daivon["status"] == "fail" and daivon["remedy"] == PermissionDeniedError.remedy
    assert master_calls == 3  # Balance, OpenOrders, AddOrder validate=true (never placed)

"""Scenario files (TOML/JSON), built-ins, and the simulator CLI as a subprocess."""

from __future__ import annotations

import base64
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from simulator import (
    BUILTIN_SCENARIOS,
    KeySpec,
    ScenarioError,
    builtin_scenario,
    load_scenario,
)
from testkit.rawclient import raw_request

ROOT = Path(__file__).resolve().parents[2]
SECRET = base64.b64encode(bytes(range(64))).decode()
TOML = f"""
clock_offset_s = 1.5
latency_ms = [1, 3]
tier = "pro"
lockout_threshold = 5
system_status = "post_only"

[[keys]]
key = "SIMscenarioKeyOne"
secret = "{SECRET}"
name = "MASTER"
account = "MASTER"
permissions = ["funds", "orders"]
balances = {{ ZUSD = "1000.0000", USDT = "50.00000000" }}
last_nonce = 42
nonce_window = 5000
other_writer = {{ interval_ms = 250, lead_ms = 1000 }}

[[keys]]
key = "SIMscenarioKeyTwo"
secret = "{SECRET}"
last_nonce = "now_ms+30s"
"""
JSON = {
    "clock_offset_s": 1.5,
    "latency_ms": [1, 3],
    "tier": "pro",
    "lockout_threshold": 5,
    "system_status": "post_only",
    "keys": [
        {
            "key": "SIMscenarioKeyOne",
            "secret": SECRET,
            "name": "MASTER",
            "account": "MASTER",
            "permissions": ["funds", "orders"],
            "balances": {"ZUSD": "1000.0000", "USDT": "50.00000000"},
            "last_nonce": 42,
            "nonce_window": 5000,
            "other_writer": {"interval_ms": 250, "lead_ms": 1000},
        },
        {"key": "SIMscenarioKeyTwo", "secret": SECRET, "last_nonce": "now_ms+30s"},
    ],
}


def test_toml_and_json_scenarios_are_equivalent(tmp_path):
    (tmp_path / "s.toml").write_text(TOML)
    (tmp_path / "s.json").write_text(json.dumps(JSON))
    before_ms = int(time.time() * 1000)
    a, b = load_scenario(tmp_path / "s.toml"), load_scenario(tmp_path / "s.json")
    after_ms = int(time.time() * 1000)
    for scenario in (a, b):
        assert scenario.tier == "pro" and scenario.latency_ms == (1.0, 3.0)
        assert scenario.clock_offset_s == 1.5 and scenario.system_status == "post_only"
        one, two = scenario.keys
        assert one.permissions == {"funds", "orders"} and one.nonce_window == 5000
        assert one.balances == {"ZUSD": "1000.0000", "USDT": "50.00000000"}
        assert one.other_writer is not None and one.other_writer.lead_ms == 1000
        assert isinstance(two.last_nonce, int)
        assert before_ms + 30_000 <= two.last_nonce <= after_ms + 30_000
        assert two.name == "SIMs…yTwo" and two.permissions == {
            "funds",
            "orders",
            "trade",
            "websocket",
        }  # the default: all
    assert a.keys[0] == b.keys[0]


@pytest.mark.parametrize(
    "expr, unit, low, high",
    [
        ("now_us+30s", 1e6, 30, 30),
        ("now_ms", 1e3, 0, 0),
        ("now_ns-5s", 1e9, -5, -5),
        ("now + 2s", 1e6, 2, 2),
    ],
)
def test_relative_last_nonce(expr, unit, low, high):
    before = time.time()
    spec = KeySpec(key="SIMrelative", secret=SECRET, last_nonce=expr)
    after = time.time()
    assert isinstance(spec.last_nonce, int)
    assert int((before + low) * unit) - 1 <= spec.last_nonce <= int((after + high) * unit) + 1


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda d: d["keys"][0].update(permissions=["funds", "withdraw"]), "keys[0].permissions"),
        (lambda d: d["keys"][1].update(last_nonce="yesterday"), "keys[1].last_nonce"),
        (lambda d: d["keys"][0]["balances"].update(ZUSD=12.5), "keys[0].balances"),
        (lambda d: d["keys"][0].update(secret="not base64 at all!"), "keys[0].secret"),
        (lambda d: d["keys"][1].pop("key"), "keys[1].key"),
        (lambda d: d.update(tier="whale"), "tier"),
        (lambda d: d.update(latency_ms=[30, 0]), "latency_ms"),
        (lambda d: d.update(lockout_threshold=-1), "lockout_threshold"),
        (lambda d: d.update(colour="blue"), "colour"),
        (lambda d: d["keys"][0].update(nonce_windw=5), "keys[0].nonce_windw"),
        (lambda d: d["keys"][1].update(key="SIMscenarioKeyOne"), "keys[1].key"),
        (lambda d: d["keys"][0].update(account="user:Daivon"), "keys[0].account"),
    ],
)
def test_a_bad_field_names_the_file_and_the_field(tmp_path, mutate, field):
    doc = json.loads(json.dumps(JSON))
    mutate(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert str(path) in message and field in message, message
    assert SECRET not in message and "not base64 at all!" not in message


def test_unreadable_or_malformed_files(tmp_path):
    for name, text, expected in [
        ("x.toml", "tier = ", "not valid TOML"),
        ("x.json", "{", "not valid JSON"),
        ("x.yaml", "tier: pro", "unsupported extension"),
    ]:
        (tmp_path / name).write_text(text)
        with pytest.raises(ScenarioError, match=expected):
            load_scenario(tmp_path / name)
    with pytest.raises(ScenarioError, match="no such file"):
        load_scenario(tmp_path / "missing.toml")


def test_shipped_example_scenario_loads():
    scenario = load_scenario(ROOT / "simulator" / "scenarios" / "example.toml")
    assert [k.account for k in scenario.keys] == ["MASTER", "USER:daivon"]


def test_builtin_scenarios_are_well_formed():
    assert {
        "healthy",
        "demo",
        "previous-session-nonce",
        "finer-unit",
        "shared-key",
        "permission-denied",
    } <= set(BUILTIN_SCENARIOS)
    for name in BUILTIN_SCENARIOS:
        scenario = builtin_scenario(name)
        for spec in scenario.keys:
            assert len(spec.key) == 56 and spec.key.startswith("SIM")
            assert len(spec.secret) == 88 and spec.secret.endswith("==")
            assert len(base64.b64decode(spec.secret)) == 64
    healthy = builtin_scenario("healthy")
    assert [k.account for k in healthy.keys] == ["MASTER", "USER:daivon", "USER:tania_gilbert"]
    assert healthy.keys[0].balances["XXBT"] == "0.1234567890"
    assert builtin_scenario("healthy").keys[0].key == healthy.keys[0].key  # stable
    assert "funds" not in builtin_scenario("permission-denied").keys[0].permissions
    with pytest.raises(ScenarioError, match="unknown built-in scenario"):
        builtin_scenario("sunny")


# ------------------------------------------------------------------------------------ CLI
def _spawn(*args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "simulator", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _first_line(proc: subprocess.Popen[str], timeout: float = 15.0) -> str:
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()
    return lines.get(timeout=timeout)


def test_cli_listens_on_a_free_port_and_stops_on_sigterm():
    proc = _spawn("--port", "0", "--scenario", "healthy")
    try:
        line = _first_line(proc)
        assert line.startswith("listening on http://127.0.0.1:") and line.endswith("\n")
        url = line.split()[-1]
        assert int(url.rsplit(":", 1)[1]) > 0
        assert raw_request(url, "GET", "/0/public/Time").json()["error"] == []
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.communicate()  # and close our ends of its pipes


@pytest.mark.parametrize(
    ("name", "text", "field"),
    [
        ("bad.toml", 'tier = "whale"\n', "'tier'"),
        ("bad.json", '{"prices": {"XXBT": "free"}}', "'prices.XXBT'"),
    ],
)
def test_cli_bad_scenario_is_a_one_line_error(tmp_path, name, text, field):
    bad = tmp_path / name
    bad.write_text(text)
    proc = _spawn("--scenario", str(bad))
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 2
    assert err.count("\n") == 1 and str(bad) in err and field in err and "Traceback" not in err


def simulator_cli(*args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "simulator", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=15,
        check=True,
    ).stdout


def test_cli_lists_scenarios_and_documents_the_format():
    out = simulator_cli("--list-scenarios")
    assert all(name in out for name in BUILTIN_SCENARIOS)
    help_text = simulator_cli("--help")
    assert "[[keys]]" in help_text and "/_sim/stats" in help_text
    assert "prices = {" in help_text and "EQuery:Unknown asset pair" in help_text

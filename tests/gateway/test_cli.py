"""``krakenwatch gateway`` as a real process: its listening line, /healthz, /metrics (promtool),
SIGTERM, and one clear line with exit code 2 for every bad input."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import krakenex
import pytest

from testkit.gateway import account_environ, gateway_process
from testkit.net import http_get
from testkit.procs import assert_one_line_error as one_line_error
from testkit.procs import run_krakenwatch, stop_group
from testkit.sim import make_key

KEY, SECRET = make_key("cli")


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_krakenwatch("gateway", *args, env=env, cwd=cwd)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *culprits: str) -> None:
    one_line_error(result, *culprits, prefix="krakenwatch gateway: ")


@pytest.mark.slow
def test_the_gateway_process_serves_reports_health_and_metrics_and_stops_on_sigterm(
    sim_key, sim_env, tmp_path: Path
) -> None:
    _sim, key, secret = sim_key
    with gateway_process(sim_env, tmp_path) as gw:
        assert f"gateway listening on {gw.url}\naccounts: MASTER" in gw.output()
        api = krakenex.API(key, secret)
        api.uri = gw.url
        assert api.query_private("Balance")["error"] == []
        status, _, body = http_get(gw.url + "/healthz")
        health = json.loads(body)
        assert status == 200 and health["ok"] is True
        assert health["accounts"] == [
            {
                "account": "MASTER",
                "tier": "starter",
                "queue_depth": 0,
                "rate_level": pytest.approx(1.0, abs=0.1),
            }
        ]
        status, content_type, text = http_get(gw.url + "/metrics")
        assert status == 200 and content_type.startswith("text/plain")
        for name in (
            'krakenwatch_gateway_requests_total{account="MASTER",client="account-key",method="Balance",outcome="ok"} 1.0',
            'krakenwatch_invalid_nonce_errors_total{account="MASTER"} 0.0',
            'krakenwatch_gateway_rate_level{account="MASTER"}',
            'krakenwatch_gateway_queue_wait_seconds_count{account="MASTER"} 1.0',
            'krakenwatch_gateway_upstream_duration_seconds_count{account="MASTER",method="Balance"} 1.0',
        ):
            assert name in text, name
        promtool = shutil.which("promtool")
        assert promtool, "promtool (Debian package prometheus) is needed"
        lint = subprocess.run(
            [promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr
        code = stop_group(gw.proc, signal.SIGTERM, grace=20)
        assert code in (0, -signal.SIGTERM), gw.output()
    assert "Traceback" not in gw.output()


@pytest.mark.parametrize(
    ("variables", "culprits"),
    [
        ({"KRAKEN_MASTER_API_SECRET": "not base64!"}, ["KRAKEN_MASTER_API_SECRET"]),
        ({"KRAKEN_MASTER_API_SECRET": None}, ["KRAKEN_MASTER_API_SECRET"]),
        ({"KRAKEN_MASTER_NONCE_UNIT": "minutes"}, ["KRAKEN_MASTER_NONCE_UNIT"]),
        ({"KRAKEN_MASTER_TIER": "gold"}, ["KRAKEN_MASTER_TIER", "gold"]),
        ({"KRAKENWATCH_TIER": "gold"}, ["KRAKENWATCH_TIER", "gold"]),
        ({"KRAKENWATCH_REQUEST_TIMEOUT": "soon"}, ["KRAKENWATCH_REQUEST_TIMEOUT"]),
        ({"KRAKEN_API_URL": "ftp://kraken"}, ["KRAKEN_API_URL"]),
        (
            {"KRAKEN_MASTER_API_KEY": None, "KRAKEN_MASTER_API_SECRET": None},
            ["no Kraken account configured"],
        ),
    ],
)
def test_bad_configuration_is_one_line_naming_the_variable_and_exit_2(
    tmp_path: Path, variables, culprits
) -> None:
    env = account_environ({"MASTER": (KEY, SECRET)}, "http://127.0.0.1:9", tmp_path / "data")
    for name, value in variables.items():
        if value is None:
            env.pop(name)
        else:
            env[name] = value
    assert_one_line_error(run_cli(["--port", "0"], env, tmp_path), *culprits)


@pytest.mark.parametrize(
    ("args", "culprit"),
    [
        (["--max-queue-wait", "-1"], "--max-queue-wait"),
        (["--port", "http"], "--port"),
        (["--env-file", "missing.env"], "missing.env"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    tmp_path: Path, args: list[str], culprit: str
) -> None:
    env = account_environ({"MASTER": (KEY, SECRET)}, "http://127.0.0.1:9", tmp_path / "data")
    assert_one_line_error(run_cli(args, env, tmp_path), culprit)


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = account_environ({"MASTER": (KEY, SECRET)}, "http://127.0.0.1:9", tmp_path / "data")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        assert_one_line_error(
            run_cli(["--port", port], env, tmp_path), f"127.0.0.1:{port}", "--port"
        )


@pytest.mark.slow
def test_binding_beyond_loopback_warns_that_anyone_with_a_secret_can_trade(
    sim_env, tmp_path: Path
) -> None:
    with gateway_process(sim_env, tmp_path, ["--host", "0.0.0.0"]) as gw:  # noqa: S104
        assert (
            "warning: listening on 0.0.0.0: anyone who can reach this port and knows" in gw.output()
        )
        assert "can trade" in gw.output()
        stop_group(gw.proc)


def test_accounts_come_from_the_env_file(sim_key, tmp_path: Path) -> None:
    sim, key, secret = sim_key
    lines = [
        f"{name}={value}"
        for name, value in account_environ(
            {"USER:daivon": (key, secret)}, sim.url, tmp_path / "data"
        ).items()
    ]
    (tmp_path / "bot.env").write_text("\n".join(lines) + "\n")
    with gateway_process({}, tmp_path, ["--env-file", "bot.env"]) as gw:
        assert "accounts: USER:daivon" in gw.output()
        stop_group(gw.proc)

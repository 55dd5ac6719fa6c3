"""A new user's first hour: a typo never reaches the real Kraken, every mistake is named once,
every command says its configuration mistakes in one line with exit code 2."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from broker import ConfigurationError, KrakenClient
from testkit.net import eventually, free_port
from testkit.procs import (
    assert_one_line_error,
    krakenwatch,
    run_krakenwatch,
    spawn,
    stop_group,
    up_process,
)
from testkit.proxy import RecordingProxy, recording_proxy
from testkit.sim import make_key, master_environment, one_key_simulator

KEY, SECRET = make_key("first-hour")
ACCOUNT = {"KRAKEN_MASTER_API_KEY": KEY, "KRAKEN_MASTER_API_SECRET": SECRET}


def check(workdir: Path, env: dict[str, str], proxy: RecordingProxy | None = None):
    """``krakenwatch check`` in ``workdir`` (its ``.env`` read there) with ``env``."""
    extra = {"KRAKENWATCH_DATA_DIR": str(workdir / "data"), **env}
    if proxy is not None:
        extra.update(proxy.environ())
    return run_krakenwatch("check", "--timeout", "10", env=extra, cwd=workdir, timeout=60)


@pytest.mark.parametrize("url", ["api.kraken.com", "ftp://api.kraken.com", "https://", ""])
def test_a_bad_kraken_api_url_sends_nothing_anywhere(tmp_path: Path, url: str) -> None:
    (tmp_path / ".env").write_text(f"KRAKEN_API_URL={url}\n")
    with recording_proxy() as proxy:
        done = check(tmp_path, ACCOUNT, proxy)
    assert done.returncode == 2, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if "KRAKEN_API_URL" in line]
    assert len(errors) == 1 and "nothing is sent" in errors[0], done.stderr  # said once
    assert proxy.seen == []  # not one connection attempt to any host (api.kraken.com included)


def test_up_with_a_bad_url_shows_the_accounts_invalid_and_sends_nothing(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **ACCOUNT,
        "KRAKEN_API_URL": "api.kraken.com",
        "KRAKENWATCH_DATA_DIR": str(tmp_path / "data"),
    }
    with recording_proxy() as proxy:
        env.update(proxy.environ())
        proc = spawn(krakenwatch("up", "--port", str(port)), tmp_path / "up.log", env=env)
        try:

            def verify() -> dict | None:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                        sock.sendall(b"GET /api/verify HTTP/1.0\r\nHost: x\r\n\r\n")
                        raw = b"".join(iter(lambda: sock.recv(65536), b""))
                except OSError:
                    return None
                head, _, body = raw.partition(b"\r\n\r\n")
                return json.loads(body) if b" 503 " in head.split(b"\r\n")[0] else None

            eventually(lambda: (verify() or {}).get("accounts"), 60, what="the verify document")
            doc = verify()
        finally:
            stop_group(proc)
    assert doc is not None
    assert [(a["account"], a["state"]) for a in doc["accounts"]] == [("MASTER", "invalid_config")]
    assert "KRAKEN_API_URL" in doc["accounts"][0]["reason"]
    assert proxy.seen == []


def test_kraken_client_reads_kraken_api_url_like_its_other_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with one_key_simulator("client-url") as (sim, key, secret):
        monkeypatch.setenv("KRAKEN_API_URL", sim.url)  # what `simulator --print-env` prints
        assert KrakenClient(key, secret).uri == sim.url
        monkeypatch.setenv("KRAKEN_API_URL", "api.kraken.com")
        with pytest.raises(ConfigurationError, match="KRAKEN_API_URL") as caught:
            KrakenClient(key, secret)
        assert caught.value.variable == "KRAKEN_API_URL"
        with pytest.raises(ConfigurationError, match="KRAKEN_API_URL"):
            KrakenClient(key, secret, base_url="https//typo")
        monkeypatch.delenv("KRAKEN_API_URL")
        assert KrakenClient(key, secret).uri == "https://api.kraken.com"


def test_misspelt_variables_are_named_with_the_nearest_known_name(tmp_path: Path) -> None:
    with one_key_simulator("typos") as (sim, key, secret):
        env = master_environment(
            sim.url,
            key,
            secret,
            KRAKEN_MASTER_NONCE_UINT="ns",
            KRAKENWATCH_POLL_INTERVL="5",
            KRAKEN_USR_BOB_API_KEY="x",
        )
        done = check(tmp_path, env)
    warnings = [line for line in done.stderr.splitlines() if ": warning: " in line]
    assert sorted(w.split("did you mean ")[-1] for w in warnings) == [
        "KRAKENWATCH_POLL_INTERVAL?",
        "KRAKEN_MASTER_NONCE_UNIT?",
        "KRAKEN_USER_BOB_API_KEY?",
    ], done.stderr
    assert done.returncode in (0, 1)  # warnings, not configuration errors


def test_a_misspelt_account_is_named_when_no_account_is_configured(tmp_path: Path) -> None:
    done = check(tmp_path, {"KRAKEN_MASTR_API_KEY": KEY, "KRAKEN_MASTR_API_SECRET": SECRET})
    assert done.returncode == 2
    assert "KRAKEN_MASTR_API_KEY" in done.stderr and "did you mean KRAKEN_MASTER_API_KEY?" in (
        done.stderr
    )
    assert "no Kraken account is configured" in done.stderr


def test_an_empty_setting_is_an_error_naming_it(tmp_path: Path) -> None:
    with one_key_simulator("empty") as (sim, key, secret):
        env = master_environment(sim.url, key, secret, KRAKENWATCH_MAX_SKEW="")
        done = check(tmp_path, env)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if "configuration error" in line]
    assert errors == ["krakenwatch check: configuration error: KRAKENWATCH_MAX_SKEW: is empty: "
                      "give it a value, or remove it for the default"]  # fmt: skip


# ----------------------------------------------------------------- one line, exit 2, everywhere
def gateway_env(tmp_path: Path, data_dir: Path) -> dict[str, str]:
    return {
        **ACCOUNT,
        "KRAKEN_API_URL": "http://127.0.0.1:9",
        "KRAKENWATCH_DATA_DIR": str(data_dir),
    }


def unusable_data_dir(tmp_path: Path) -> Path:
    """A data dir that cannot be created (its parent is a file): read-only for everyone, root
    included."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    return blocker / "data"


def test_the_gateway_with_an_unusable_data_dir_says_so_in_one_line(tmp_path: Path) -> None:
    env = gateway_env(tmp_path, unusable_data_dir(tmp_path))
    done = run_krakenwatch("gateway", "--port", "0", env=env, cwd=tmp_path)
    assert_one_line_error(done, "KRAKENWATCH_DATA_DIR", prefix="krakenwatch gateway: ")


def test_add_client_with_an_unusable_data_dir_says_so_in_one_line(tmp_path: Path) -> None:
    env = gateway_env(tmp_path, unusable_data_dir(tmp_path))
    done = run_krakenwatch(
        "gateway", "add-client", "bot", "--account", "MASTER", env=env, cwd=tmp_path
    )
    assert_one_line_error(done, "a-file", prefix="krakenwatch gateway add-client: ")


@pytest.mark.parametrize("command", [[], ["list-clients"], ["remove-client", "bot"]])
def test_a_missing_config_file_is_named(tmp_path: Path, command: list[str]) -> None:
    env = gateway_env(tmp_path, tmp_path / "data")
    done = run_krakenwatch(
        "gateway", *command, "--config", str(tmp_path / "nonexistent.toml"), env=env, cwd=tmp_path
    )
    assert_one_line_error(done, "--config", "nonexistent.toml", prefix="krakenwatch gateway")


def test_up_on_a_busy_port_says_so_in_one_line(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        env = {"KRAKENWATCH_DATA_DIR": str(tmp_path / "data")}
        done = run_krakenwatch("up", "--port", str(port), env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [
        line for line in done.stderr.splitlines() if not line.startswith("krakenwatch: warning")
    ]
    assert [line for line in lines if str(port) in line] == [
        f"krakenwatch: cannot listen on 127.0.0.1:{port} (--address/--port): Address already in use"
    ], done.stderr
    assert "Traceback" not in done.stderr


def test_the_demo_removes_its_temporary_state(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "demo.log"
    proc = spawn(krakenwatch("demo", "--port", str(port)), log, cwd=tmp_path)
    try:
        eventually(lambda: "metrics: http" in log.read_text(), 90, what="the demo to serve")
    finally:
        stop_group(proc, sig=signal.SIGINT)
    state = next(
        line.split("state in ")[1].split()[0]
        for line in log.read_text().splitlines()
        if "state in " in line
    )
    assert not Path(state).exists(), state


def test_demo_with_the_gateway_prints_a_demo_key_and_a_snippet_that_works(tmp_path: Path) -> None:
    port, gateway_port = free_port(), free_port()
    log = tmp_path / "demo.log"
    argv = krakenwatch(
        "demo", "--port", str(port), "--gateway", "--gateway-port", str(gateway_port)
    )
    proc = spawn(argv, log, cwd=tmp_path)
    try:
        eventually(lambda: "demo bot: try it: " in log.read_text(), 90, what="the demo's hints")
        lines = log.read_text().splitlines()
        snippet = next(line for line in lines if "try it: " in line).split("try it: ", 1)[1]
        assert any(line.startswith("demo bot: KRAKEN_API_KEY=") for line in lines)
        assert any(line.startswith("demo bot: KRAKEN_API_SECRET=") for line in lines)
        assert snippet.startswith('python -c "') and snippet.endswith('"')
        code = snippet.removeprefix('python -c "').removesuffix('"')
        ran = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
        )  # exactly what a user pastes
    finally:
        stop_group(proc)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("{'error': [], 'result': {"), ran.stdout
    assert f"127.0.0.1:{gateway_port}" in snippet


def test_metrics_say_vary_once_and_export_store_errors_from_zero(tmp_path: Path) -> None:
    with up_process({}, tmp_path, command="demo", args=["--data-dir", str(tmp_path / "d")]) as up:
        up.wait_checked()
        parts = urlsplit(up.url)
        answers = []
        for headers in ({}, {"Accept-Encoding": "gzip"}):
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
            conn.request("GET", "/metrics", headers=headers)
            response = conn.getresponse()
            answers.append((response.msg.get_all("Vary"), response.read()))
            conn.close()
    plain, gzipped = answers
    assert plain[0] == ["Accept-Encoding"] and gzipped[0] == ["Accept-Encoding"]
    text = plain[1].decode()
    for kind in ("nonce_store", "nonce_store_unavailable"):
        line = f'krakenwatch_nonce_store_errors_total{{account="MASTER",kind="{kind}"}} 0.0'
        assert line in text

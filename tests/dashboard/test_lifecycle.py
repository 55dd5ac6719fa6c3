"""`krakenwatch up` and `demo` as real processes: the URLs once the server answers, Ctrl-C quiet."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from dashboard.web.terminal import STOPPED
from testkit.env import subprocess_environ
from testkit.net import eventually, http_get, status_of
from testkit.procs import krakenwatch, spawn, stop_group
from testkit.sim import scenario_simulator

URL_LINE = re.compile(r"^dashboard: (http://127\.0\.0\.1:(\d+))/$", re.M)


def announced_url(log: Path) -> str:
    """The dashboard URL, as soon as the process has printed it (port 0: the OS chose it)."""
    match = eventually(
        lambda: URL_LINE.search(log.read_text()),
        60,
        what="the dashboard URL line",
        on_timeout=log.read_text,
    )
    assert match.group(2) != "0", "the URL names port 0, not the bound port"
    return match.group(1)


def assert_answers_at_once(base: str, log: Path) -> None:
    """Printed only once the server accepts connections: it answers now, without a retry."""
    try:
        status, _, body = http_get(base + "/_stcore/health", timeout=5)
    except OSError as exc:
        pytest.fail(f"the URLs were printed before the server accepted connections: {exc}")
    assert (status, body) == (200, "ok")
    assert http_get(base + "/api/verify", timeout=10)[0] in (200, 503)
    text = log.read_text()
    for line in (f"dashboard: {base}/", f"metrics: {base}/metrics", f"verify: {base}/api/verify"):
        assert text.count(line) == 1, text
    assert "You can now view your Streamlit app" not in text, "Streamlit's own early URL is shown"


def interrupt(proc: subprocess.Popen[bytes], log: Path, sig: int = signal.SIGINT) -> str:
    """``sig`` to the process group (Ctrl-C in a terminal reaches the whole group); its output."""
    os.killpg(proc.pid, sig)
    code = proc.wait(30)
    text = log.read_text()
    assert code == 0, text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    assert text.splitlines()[-1] == STOPPED, text
    assert text.count(STOPPED) == 1
    return text


def test_demo_announces_once_serving_and_stops_quietly_on_ctrl_c(tmp_path: Path) -> None:
    log = tmp_path / "demo.log"
    proc = spawn(
        krakenwatch("demo", "--port", "0", "--data-dir", str(tmp_path / "data")),
        log,
        env=subprocess_environ(),
        cwd=tmp_path,
    )
    try:
        base = announced_url(log)
        assert_answers_at_once(base, log)
        simulator = re.search(r"^demo: Kraken simulator \(.*\) at (\S+)$", log.read_text(), re.M)
        assert simulator, log.read_text()
        assert status_of(simulator.group(1) + "/0/public/Time") == 200
        interrupt(proc, log)
    finally:
        stop_group(proc)
    assert status_of(base + "/_stcore/health") == 0
    assert status_of(simulator.group(1) + "/0/public/Time") == 0, "the simulator still answers"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_up_announces_once_serving_and_stops_quietly(tmp_path: Path, sig: int) -> None:
    log = tmp_path / "up.log"
    with scenario_simulator("healthy") as (_, env):
        proc = spawn(
            krakenwatch("up", "--port", "0"),
            log,
            env=subprocess_environ({**env, "KRAKENWATCH_DATA_DIR": str(tmp_path / "data")}),
            cwd=tmp_path,
        )
        try:
            base = announced_url(log)
            assert_answers_at_once(base, log)
            interrupt(proc, log, sig)
        finally:
            stop_group(proc)
    assert status_of(base + "/_stcore/health") == 0

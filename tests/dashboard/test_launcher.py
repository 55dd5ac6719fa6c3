"""`streamlit run dashboard/app.py` serves the same app: pages, /metrics and /api/verify."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from testkit.net import eventually, free_port, http_get
from testkit.procs import spawn, stop_group
from testkit.sim import scenario_simulator

LAUNCHER = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"


def test_streamlit_run_on_the_launcher(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with scenario_simulator("healthy") as (_, env):
        proc = spawn(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(LAUNCHER),
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
            ],
            tmp_path / "streamlit.log",
            env={
                **env,
                "KRAKENWATCH_DATA_DIR": str(tmp_path / "data"),
                "KRAKENWATCH_POLL_INTERVAL": "1",
            },
            cwd=tmp_path,
        )
        try:

            def verified() -> bool:
                try:
                    status, _, body = http_get(base + "/api/verify", timeout=2)
                except OSError:
                    return False
                return status == 200 and json.loads(body)["ok"] is True

            eventually(verified, timeout=60, interval=0.2)
            status, _, text = http_get(base + "/metrics")
            assert status == 200 and 'krakenwatch_account_up{account="MASTER"} 1.0' in text
            status, content_type, html = http_get(base + "/")
            assert status == 200 and "text/html" in content_type and "<script" in html
        finally:
            stop_group(proc)

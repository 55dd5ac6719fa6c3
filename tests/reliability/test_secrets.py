"""Known keys and secrets go in; we search everything krakenwatch wrote or served for them."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

from simulator import KeySpec, Scenario, Simulator, scenario_environment
from testkit.browser import CHROMIUM, CHROMIUM_ARGS
from testkit.net import eventually, free_port, http_get
from testkit.procs import start_up, stop_group

PASSWORD = "correct horse battery staple"


def known_scenario() -> Scenario:
    keys = []
    for i, account in enumerate(("MASTER", "USER:daivon", "USER:tania_gilbert")):
        secret = base64.b64encode(bytes([0x5A ^ i]) * 64).decode()
        keys.append(
            KeySpec(
                key=f"KNOWNKEY{i}" + "Q" * 48,
                secret=secret,
                name=account,
                account=account,
                balances={"ZUSD": "10.0000"},
                permissions={"funds", "orders"} if i < 2 else {"funds"},
            )
        )
    return Scenario(keys=keys, tier="unlimited")


def everything_in(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def test_no_secret_or_full_key_anywhere(tmp_path: Path) -> None:
    scenario = known_scenario()
    needles = [s for spec in scenario.keys for s in (spec.key, spec.secret)] + [PASSWORD]
    served: list[str] = []
    with Simulator(scenario).start() as sim:
        env = {
            **scenario_environment(scenario, sim.url),
            "KRAKENWATCH_DATA_DIR": str(tmp_path / "data"),
            "KRAKENWATCH_POLL_INTERVAL": "1",
            "KRAKENWATCH_REQUEST_TIMEOUT": "1",
            "KRAKENWATCH_PASSWORD": PASSWORD,
        }
        # one-shot check, also with a broken secret so errors are printed
        broken = {**env, "KRAKEN_USER_DAIVON_API_SECRET": base64.b64encode(b"\x01" * 64).decode()}
        for run_env in (env, broken):
            proc = subprocess.run(
                [sys.executable, "-m", "dashboard.cli", "check", "--timeout", "8"],
                env=run_env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=60,
            )
            served += [proc.stdout, proc.stderr]
        needles.append(broken["KRAKEN_USER_DAIVON_API_SECRET"])

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        up = start_up(env, tmp_path, port)
        try:
            auth = {
                "Authorization": "Basic "
                + base64.b64encode(f"prometheus:{PASSWORD}".encode()).decode()
            }
            assert http_get(base + "/metrics")[0] == 401, "the password does not protect /metrics"
            eventually(
                lambda: (
                    'krakenwatch_account_up{account="MASTER"} 1.0'
                    in http_get(base + "/metrics", headers=auth)[2]
                )
            )
            # a fault cycle while it runs
            for fault in (
                {"http_status": 503},
                {"api_error": "EService:Busy"},
                {"hang": True},
                {"drop": True},
                {"api_error": "EAPI:Invalid nonce"},
            ):
                sim.set_faults(**fault, scope="private")
                eventually(
                    lambda: (
                        'krakenwatch_account_up{account="MASTER"} 0.0'
                        in http_get(base + "/metrics", headers=auth)[2]
                    )
                )
                sim.clear_faults()
            served += [
                http_get(base + "/metrics", headers=auth)[2],
                http_get(base + "/api/verify", headers=auth)[2],
            ]

            frames: list[str] = []
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
                )
                try:
                    page = browser.new_page()
                    page.on(
                        "websocket",
                        lambda ws: ws.on(
                            "framereceived",
                            lambda p: frames.append(
                                p if isinstance(p, str) else p.decode("latin-1")
                            ),
                        ),
                    )
                    page.goto(base + "/")
                    page.get_by_label("Password", exact=True).fill(PASSWORD)
                    page.get_by_role("button", name="Log in").click()
                    page.get_by_text("Post-deploy verification").wait_for(timeout=30_000)
                    page.get_by_text("USER:tania_gilbert", exact=True).first.wait_for(
                        timeout=15_000
                    )
                    served.append(page.content())
                    pages = {
                        "Timeline": "Connection timeline",
                        "Balances": "Balances",
                        "Nonce & clock": "Per key",
                        "Settings": "Prometheus scrape config",
                    }
                    for link, marker in pages.items():
                        page.get_by_role("link", name=link).click()
                        page.get_by_text(marker, exact=True).first.wait_for(timeout=15_000)
                        page.locator("[data-testid='stDataFrame'] canvas").first.wait_for(
                            timeout=15_000
                        )
                        served.append(page.content())
                finally:
                    browser.close()
            assert frames
            served += frames
        finally:
            stop_group(up)
        served.append((tmp_path / "up.log").read_text())
    written = everything_in(tmp_path / "data")
    assert b"krakenwatch.sqlite3" in b"".join(
        p.name.encode() for p in (tmp_path / "data").iterdir()
    )
    assert list((tmp_path / "data" / "nonces").glob("*.nonce")), "the nonce store was not written"
    text = "\n".join(served)
    for needle in needles:
        assert needle not in text, "a secret or full key was served or printed"
        assert needle.encode() not in written, "a secret or full key was written to disk"
        assert needle[:20] not in text

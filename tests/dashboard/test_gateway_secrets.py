"""The secret audit of gateway client credentials: `krakenwatch up --gateway` with two clients
issued by `add-client`, bots using them (good calls, wrong secrets, refused methods) and the
account's own key; then everything served or written is searched: the process output, both
/metrics, /api/verify, /healthz, the pages and their websocket frames in Chromium, `list-clients`,
the event database and every other file of the data dir. Neither the client secrets nor the Kraken
secret (nor a whole key) appears; only the client file itself holds the client secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dashboard.checks.checklist import CHECK_TITLES
from simulator import KeySpec, Scenario, Simulator
from testkit.bots import krakenex_api
from testkit.browser import chromium_page
from testkit.gateway import account_environ, add_client
from testkit.net import free_port, http_get
from testkit.procs import run_krakenwatch, up_process
from testkit.sim import make_key


def page_texts(base: str) -> list[str]:
    """The Overview and Gateway pages' HTML and every websocket frame they received."""
    frames: list[str] = []
    with chromium_page(frames) as page:
        page.goto(base + "/", wait_until="domcontentloaded")
        page.get_by_text(CHECK_TITLES["gateway_client_auth"]).first.wait_for(timeout=30_000)
        overview = page.content()
        page.get_by_role("link", name="Gateway").click()
        page.locator("[data-testid='stTable']", has_text="reader").first.wait_for(timeout=30_000)
        html = [overview, page.content()]
    assert frames, "no websocket payload was captured"
    return html + frames


@pytest.mark.slow
def test_no_client_or_kraken_secret_in_logs_metrics_pages_listing_or_database(
    tmp_path: Path,
) -> None:
    key, secret = make_key("audit")
    scenario = Scenario(
        keys=[KeySpec(key=key, secret=secret, name="audit", balances={"ZUSD": "10.0000"})],
        tier="unlimited",
        lockout_threshold=0,
    )
    port = free_port()
    gateway = f"http://127.0.0.1:{port}"
    with Simulator(scenario) as sim:
        env = {
            **account_environ({"MASTER": (key, secret)}, sim.url, tmp_path / "data"),
            "KRAKENWATCH_TIER": "pro",
            "KRAKENWATCH_POLL_INTERVAL": "5",
        }
        trader_key, trader_secret = add_client(env, tmp_path, "trader")
        reader_key, reader_secret = add_client(
            env, tmp_path, "reader", "MASTER", "--allow", "Balance"
        )
        args = ["--gateway", "--gateway-port", str(port)]
        with up_process(env, tmp_path, args=args) as up:
            trader, reader = (
                krakenex_api(trader_key, trader_secret, gateway),
                krakenex_api(reader_key, reader_secret, gateway),
            )
            assert trader.query_private("Balance")["error"] == []
            assert trader.query_private("Withdraw", {"asset": "XBT", "amount": "1"})["error"] == [
                "EGeneral:Permission denied"
            ]
            assert reader.query_private("OpenOrders")["error"] == ["EGeneral:Permission denied"]
            assert krakenex_api(key, secret, gateway).query_private("Balance")["error"] == []
            forged = krakenex_api(reader_key, make_key("forged")[1], gateway)
            for _ in range(3):  # keeps failing authentication: the checklist flags it
                assert forged.query_private("Balance")["error"] == ["EAPI:Invalid signature"]
            verify = up.verify()
            served = {
                "verify": json.dumps(verify),
                "metrics": up.get("/metrics")[1],
                "gateway metrics": http_get(gateway + "/metrics")[2],
                "gateway health": http_get(gateway + "/healthz")[2],
            }
            for i, text in enumerate(page_texts(up.url)):
                served[f"page {i}"] = text
            listed = run_krakenwatch("gateway", "list-clients", env=env, cwd=tmp_path)
        served["output"] = up.log.read_text()
    served["list-clients"] = listed.stdout + listed.stderr
    assert "gateway: " in served["output"] and "trader" in served["list-clients"]
    client_file = tmp_path / "data" / "gateway.toml"
    written = {
        f"file {path.relative_to(tmp_path)}": path.read_bytes().decode("latin-1")
        for path in (tmp_path / "data").rglob("*")
        if path.is_file() and path != client_file
    }
    assert any(name.endswith(".sqlite3") for name in written), written.keys()
    checks = {(c["name"], c["account"]): c["status"] for c in verify["checks"]}
    assert checks[("gateway_client_auth", "client:reader")] == "fail"
    assert checks[("gateway_client_auth", "client:trader")] == "pass"
    assert 'client="trader"' in served["metrics"] and "reader" in served["page 1"]
    forbidden = {
        "Kraken secret": secret,
        "Kraken key": key,
        "trader secret": trader_secret,
        "reader secret": reader_secret,
        "trader key": trader_key,
        "reader key": reader_key,
    }
    leaks = [
        (what, where)
        for where, text in {**served, **written}.items()
        for what, value in forbidden.items()
        if value in text or value[:24] in text
    ]
    assert leaks == [], leaks
    kept = client_file.read_text()
    assert secret not in kept and trader_secret in kept  # the client file holds the clients' only

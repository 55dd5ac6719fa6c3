"""The real thing with a gateway: `krakenwatch demo --gateway` in a subprocess, an unmodified
krakenex bot calling through the gateway it prints, and the Gateway page in headless Chromium
showing that traffic."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import krakenex
import pytest

from simulator import builtin_scenario
from testkit.browser import chromium_page
from testkit.net import eventually, free_port
from testkit.procs import up_process
from testkit.sim import make_key

CALLS = 5


@pytest.mark.slow
def test_the_gateway_page_shows_a_bots_calls_in_chromium(tmp_path: Path) -> None:
    master = next(k for k in builtin_scenario("demo").keys if k.account == "MASTER")
    port = free_port()
    args = ["--data-dir", str(tmp_path / "data"), "--gateway", "--gateway-port", str(port)]
    with up_process({}, tmp_path, command="demo", args=args) as demo:
        gateway = f"http://127.0.0.1:{port}"
        eventually(lambda: f"gateway: {gateway} " in demo.log.read_text(), 30, what="its URL")
        bot = krakenex.API(master.key, master.secret)
        bot.uri = gateway
        outcomes = [bot.query_private("Balance", timeout=30)["error"] for _ in range(CALLS)]
        intruder = krakenex.API(master.key, make_key("wrong")[1])
        intruder.uri = gateway
        refused = intruder.query_private("Balance", timeout=30)["error"]
        with chromium_page() as page:
            page.goto(demo.url + "/", wait_until="domcontentloaded")
            page.get_by_text("Post-deploy verification").wait_for(timeout=30_000)
            page.get_by_role("link", name="Gateway").click()
            page.get_by_role("heading", name="Gateway").wait_for(timeout=30_000)
            # the calls table's row of the bots (account, client first; the page's fragments
            # refresh, so the tables are read until the row is there)
            cells = eventually(lambda: calls_row(page, "account-key"), 20, 0.2, what="the row")
            page.locator("[data-testid='stTable']", has_text="EAPI:Invalid signature").wait_for(
                timeout=20_000
            )
            page.locator("[data-testid='stVegaLiteChart']").first.wait_for(timeout=20_000)
            assert page.locator("[data-testid='stException']").count() == 0
            assert calls_row(page, "monitor") is not None
            page.screenshot(path=str(tmp_path / "gateway.png"), full_page=True)
            html = page.content()
    assert outcomes == [[]] * CALLS and refused == ["EAPI:Invalid signature"]
    # account, client, calls, ok, kraken_error, invalid_nonce, rate_limited, rejected, ...
    assert cells[:4] == ["MASTER", "account-key", str(CALLS + 1), str(CALLS)], cells
    assert cells[7] == "1", cells
    assert gateway in html
    for spec in builtin_scenario("demo").keys:
        assert spec.secret not in html and spec.key not in html
        assert not re.search(re.escape(spec.secret[:24]), html)


def calls_row(page: Any, client: str) -> list[str] | None:
    """The cells of the calls table's row of ``client`` on MASTER, if the page shows it."""
    for row in page.locator("[data-testid='stTable'] tr", has_text=client).all():
        cells = row.locator("td").all_inner_texts()
        if cells[:2] == ["MASTER", client]:
            return cells
    return None

"""The README's screenshots, taken from the demo: ``python -m bench.screenshots [--output DIR]``.

Starts ``krakenwatch demo --gateway`` on free ports, waits until its first checks are done, has a
krakenex bot call through the gateway with the demo key it printed (good calls, a wrong secret, a
misspelt method), opens the Overview, Balances and Gateway pages in headless Chromium (Debian's,
with :mod:`testkit.browser`'s flags), waits for real content (the verdict, the account cards, the
valued balances, the charts) and writes ``overview.png``, ``balances.png`` and ``gateway.png`` to
``DIR`` (default ``docs/``). ``make screenshots`` runs it. Not shipped: the image holds only the
packages.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from testkit.browser import CHROMIUM, CHROMIUM_ARGS
from testkit.env import ROOT
from testkit.net import free_port
from testkit.procs import up_process

__all__ = ["HEIGHT", "SHOTS", "WIDTH", "bot_traffic", "main", "take"]

SHOTS = ("overview.png", "balances.png", "gateway.png")

#: a laptop-sized window: the first screen of each page, at one device pixel per CSS pixel
WIDTH, HEIGHT = 1280, 1000
TIMEOUT_MS = 60_000


def bot_traffic(log: Path) -> None:
    """A bot's calls through the demo's gateway, with the key and URL the demo printed."""
    from testkit.bots import krakenex_api
    from testkit.gateway import demo_bot
    from testkit.sim import make_key

    found = demo_bot(log.read_text())
    bot = krakenex_api(found.key, found.secret, found.gateway_url)
    for _ in range(12):
        bot.query_private("Balance", timeout=30)
    bot.query_private("OpenOrders", timeout=30)
    bot.query_private("WithDraw", timeout=30)  # a misspelt method: refused by the gateway
    stranger = krakenex_api(found.key, make_key("stranger")[1], found.gateway_url)
    stranger.query_private("Balance", timeout=30)  # a wrong secret


def take(url: str, output: Path) -> list[Path]:
    """Screenshots of the Overview, Balances and Gateway pages of the dashboard at ``url``."""
    from playwright.sync_api import sync_playwright

    output.mkdir(parents=True, exist_ok=True)
    shots = [output / name for name in SHOTS]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(
                viewport={"width": WIDTH, "height": HEIGHT}, device_scale_factor=1
            )
            page.goto(url + "/")
            page.get_by_text("1 check failing").first.wait_for(timeout=TIMEOUT_MS)
            page.get_by_text("Balance: $").first.wait_for(timeout=TIMEOUT_MS)
            page.locator("[data-testid='stMetricValue']").first.wait_for(timeout=TIMEOUT_MS)
            page.evaluate("document.fonts.ready.then(() => true)")
            page.screenshot(path=str(shots[0]))
            page.get_by_role("link", name="Balances").click()
            page.get_by_text("all accounts").wait_for(timeout=TIMEOUT_MS)
            page.locator("[data-testid='stDataFrame'] canvas").first.wait_for(timeout=TIMEOUT_MS)
            page.evaluate("document.fonts.ready.then(() => true)")
            page.screenshot(path=str(shots[1]))
            page.get_by_role("link", name="Gateway").click()
            page.get_by_text("Last errors").wait_for(timeout=TIMEOUT_MS)
            page.get_by_text("account-key").first.wait_for(timeout=TIMEOUT_MS)
            page.get_by_text("EGeneral:Unknown method").first.wait_for(timeout=TIMEOUT_MS)
            page.locator("[data-testid='stVegaLiteChart']").first.wait_for(timeout=TIMEOUT_MS)
            page.evaluate("document.fonts.ready.then(() => true)")
            page.screenshot(path=str(shots[2]), full_page=False)
        finally:
            browser.close()
    return shots


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.screenshots", description=__doc__)
    parser.add_argument("--output", type=Path, default=ROOT / "docs", help="default: docs/")
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="krakenwatch-screenshots-") as tmp,
        up_process(
            {},
            Path(tmp),
            command="demo",
            args=["--data-dir", f"{tmp}/data", "--gateway", "--gateway-port", str(free_port())],
        ) as demo,
    ):
        demo.wait_checked()
        bot_traffic(demo.log)
        for shot in take(demo.url, args.output):
            print(shot)
    return 0


if __name__ == "__main__":
    sys.exit(main())

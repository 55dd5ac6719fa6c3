"""The README's screenshots, taken from the demo: ``python -m bench.screenshots [--output DIR]``.

Starts ``krakenwatch demo`` on a free port, waits until its first checks are done, opens the
Overview and Balances pages in headless Chromium (Debian's, with :mod:`testkit.browser`'s flags),
waits for real content (the verdict, the account cards, the valued balances and the charts) and
writes ``overview.png`` and ``balances.png`` to ``DIR`` (default ``docs/``). ``make screenshots``
runs it. Not shipped: the image holds only the packages.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from testkit.browser import CHROMIUM, CHROMIUM_ARGS
from testkit.env import ROOT
from testkit.procs import up_process

__all__ = ["HEIGHT", "WIDTH", "main", "take"]

#: a laptop-sized window: the first screen of each page, at one device pixel per CSS pixel
WIDTH, HEIGHT = 1280, 1000
TIMEOUT_MS = 60_000


def take(url: str, output: Path) -> list[Path]:
    """Screenshots of the Overview and Balances pages of the dashboard at ``url``."""
    from playwright.sync_api import sync_playwright

    output.mkdir(parents=True, exist_ok=True)
    shots = [output / "overview.png", output / "balances.png"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(
                viewport={"width": WIDTH, "height": HEIGHT}, device_scale_factor=1
            )
            page.goto(url + "/")
            page.get_by_text("check(s) failing").first.wait_for(timeout=TIMEOUT_MS)
            page.get_by_text("Balance: $").first.wait_for(timeout=TIMEOUT_MS)
            page.locator("[data-testid='stMetricValue']").first.wait_for(timeout=TIMEOUT_MS)
            page.evaluate("document.fonts.ready.then(() => true)")
            page.screenshot(path=str(shots[0]))
            page.get_by_role("link", name="Balances").click()
            page.get_by_text("all accounts").wait_for(timeout=TIMEOUT_MS)
            page.locator("[data-testid='stDataFrame'] canvas").first.wait_for(timeout=TIMEOUT_MS)
            page.evaluate("document.fonts.ready.then(() => true)")
            page.screenshot(path=str(shots[1]))
        finally:
            browser.close()
    return shots


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.screenshots", description=__doc__)
    parser.add_argument("--output", type=Path, default=ROOT / "docs", help="default: docs/")
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="krakenwatch-screenshots-") as tmp,
        up_process({}, Path(tmp), command="demo", args=["--data-dir", f"{tmp}/data"]) as demo,
    ):
        demo.wait_checked()
        for shot in take(demo.url, args.output):
            print(shot)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Debian's Chromium, driven by Playwright (never ``playwright install``: downloads are blocked)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "chromium_page"]

CHROMIUM = "/usr/bin/chromium"
#: flags for Debian's Chromium on a machine with no network beyond loopback
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def chromium_page(frames: list[str] | None = None) -> Iterator[Any]:
    """A page of a headless Chromium (1400 x 1800); every websocket frame it receives is appended
    to ``frames`` when given (for searching what the page was sent)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            if frames is not None:
                page.on(
                    "websocket",
                    lambda ws: ws.on(
                        "framereceived",
                        lambda payload: frames.append(
                            payload if isinstance(payload, str) else payload.decode("latin-1")
                        ),
                    ),
                )
            yield page
        finally:
            browser.close()

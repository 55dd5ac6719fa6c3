"""The real thing: `krakenwatch demo` in a subprocess, opened in headless Chromium."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator import builtin_scenario
from testkit.browser import chromium_page
from testkit.net import http_get
from testkit.procs import up_process


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`krakenwatch demo` on a free port; yields its base URL and its output log."""
    tmp = tmp_path_factory.mktemp("demo")
    with up_process({}, tmp, command="demo", args=["--data-dir", str(tmp / "data")]) as demo:
        yield demo.url, demo.log


def wait_for_verify(base: str) -> dict:
    deadline = time.monotonic() + 30
    while True:
        status, _, body = http_get(base + "/api/verify")
        doc = json.loads(body)
        if doc.get("checks") and not any(
            c["status"] == "pending" and c["required"] for c in doc["checks"]
        ):
            return {"status": status, **doc}
        assert time.monotonic() < deadline, doc
        time.sleep(0.2)


def test_metrics_and_verify_answer_with_no_browser_connected(demo: tuple[str, Path]) -> None:
    base, _ = demo
    doc = wait_for_verify(base)
    assert doc["status"] == 503 and doc["ok"] is False  # the demo's tania key lacks a permission
    failing = [
        (c["name"], c["account"]) for c in doc["checks"] if c["status"] == "fail" and c["required"]
    ]
    assert failing == [("permission_query_orders", "USER:tania_gilbert")]
    status, content_type, text = http_get(base + "/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    assert 'krakenwatch_account_up{account="MASTER"} 1.0' in text


def test_dashboard_in_headless_chromium(demo: tuple[str, Path], tmp_path: Path) -> None:
    base, log = demo
    wait_for_verify(base)
    frames: list[str] = []
    with chromium_page(frames) as page:
        page.goto(base + "/", wait_until="domcontentloaded")
        page.get_by_text("Not verified: 1 check(s) failing").wait_for(timeout=30_000)
        for label in ("MASTER", "USER:daivon", "USER:tania_gilbert"):
            page.get_by_text(label, exact=True).first.wait_for(timeout=10_000)
        page.get_by_text("$1,734.56 (USD + USDT)").wait_for(timeout=10_000)
        page.locator("[data-testid='stMetricValue']").first.wait_for(timeout=10_000)
        page.locator("[data-testid='stDataFrame'] canvas").first.wait_for(timeout=10_000)
        assert page.locator("[data-testid='stException']").count() == 0
        page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)
        overview_html = page.content()

        page.get_by_role("link", name="Timeline").click()
        page.get_by_text("Connection timeline").wait_for(timeout=15_000)
        page.locator(
            "[data-testid='stVegaLiteChart'] canvas, [data-testid='stVegaLiteChart'] svg"
        ).first.wait_for(timeout=20_000)
        assert page.locator("[data-testid='stException']").count() == 0
        page.screenshot(path=str(tmp_path / "timeline.png"), full_page=True)
        timeline_html = page.content()
    assert (tmp_path / "overview.png").stat().st_size > 10_000
    served = overview_html + timeline_html + "".join(frames) + log.read_text()
    for spec in builtin_scenario("demo").keys:
        assert spec.secret not in served and spec.key not in served
        assert not re.search(re.escape(spec.secret[:24]), served)
    assert frames, "no websocket payload was captured"

"""The real thing: `krakenwatch demo` in a subprocess, opened in headless Chromium."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page

from broker import PermissionDeniedError
from simulator import builtin_scenario
from testkit.browser import chromium_page
from testkit.net import http_get
from testkit.procs import UpProcess, up_process
from testkit.sim import scenario_values


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpProcess]:
    """`krakenwatch demo` on a free port, its first checks done."""
    tmp = tmp_path_factory.mktemp("demo")
    with up_process({}, tmp, command="demo", args=["--data-dir", str(tmp / "data")]) as demo:
        demo.wait_checked()
        yield demo


def test_metrics_and_verify_answer_with_no_browser_connected(demo: UpProcess) -> None:
    status, doc = demo.wait_checked()
    assert status == 503 and doc["ok"] is False  # the demo's tania key lacks a permission
    failing = [
        (c["name"], c["account"]) for c in doc["checks"] if c["status"] == "fail" and c["required"]
    ]
    assert failing == [("permission_query_orders", "USER:tania_gilbert")]
    status, content_type, text = http_get(demo.url + "/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    assert 'krakenwatch_account_up{account="MASTER"} 1.0' in text


#: every Material Symbols glyph Streamlit renders: page links, alert icons, icons in markdown
GLYPHS = (
    "[data-testid='stIconMaterial'], [data-testid='stAlertDynamicIcon'], "
    "[data-testid='stMarkdownContainer'] span[role='img'][aria-label$=' icon']"
)
#: emoji and pictographs (and the variation selector): what renders as empty boxes without a font
EMOJI = re.compile("[\u2600-\u27bf\u2b00-\u2bff\ufe0f\U0001f000-\U0001faff]")


def assert_icons_render(page: Page, at_least: int) -> None:
    """Every status icon is a Material Symbols glyph drawn by the bundled font: a square the size
    of the text, not the ligature's name spelled out (font missing) nor an emoji."""
    page.evaluate("document.fonts.ready.then(() => true)")
    assert page.evaluate("document.fonts.check('24px \"Material Symbols Rounded\"')")
    glyphs = page.locator(GLYPHS)
    assert glyphs.count() >= at_least, glyphs.count()
    for i in range(glyphs.count()):
        glyph = glyphs.nth(i)
        box = glyph.bounding_box()
        name = glyph.text_content()
        family = glyph.evaluate("e => getComputedStyle(e).fontFamily")
        assert "Material Symbols" in family, (name, family)
        assert box is not None and 0 < box["width"] <= 1.6 * box["height"], (name, box)
    assert not EMOJI.search(page.locator("[data-testid='stMain']").inner_text())


def table_rows(table: Locator) -> list[list[str]]:
    return [
        [cell.strip() for cell in row.locator("td").all_inner_texts()]
        for row in table.locator("tbody tr").all()
    ]


def test_dashboard_in_headless_chromium(demo: UpProcess, tmp_path: Path) -> None:
    base, log = demo.url, demo.log
    values = scenario_values(builtin_scenario("demo"))
    frames: list[str] = []
    with chromium_page(frames) as page:
        page.goto(base + "/", wait_until="domcontentloaded")
        alert = page.get_by_test_id("stAlertContentError")
        alert.get_by_text("Not verified: 1 check failing").wait_for(timeout=30_000)
        for label in ("MASTER", "USER:daivon", "USER:tania_gilbert"):
            page.get_by_text(label, exact=True).first.wait_for(timeout=10_000)
        page.locator("[data-testid='stMetricValue']").first.wait_for(timeout=10_000)
        assert page.locator("[data-testid='stException']").count() == 0

        # the toolbar: viewer mode, no Deploy button, no developer menu
        assert page.get_by_test_id("stAppDeployButton").count() == 0
        page.get_by_test_id("stMainMenuButton").click()
        menu = page.get_by_test_id("stMainMenuList")
        menu.get_by_text("About").wait_for(timeout=10_000)
        for developer_item in ("Deploy", "Rerun", "Clear cache", "Settings"):
            assert menu.get_by_text(developer_item).count() == 0, developer_item
        page.keyboard.press("Escape")

        # status icons are Material glyphs that render (the verdict's is "cancel")
        assert alert.get_by_test_id("stAlertDynamicIcon").text_content() == "cancel"
        assert_icons_render(page, at_least=20)

        # the failing item first, by its title, its remedy readable in full without hovering
        main = page.get_by_test_id("stMain")
        text = main.inner_text()
        failing = text.index("Query Open Orders & Trades permission")
        assert failing < text.index("pass"), "a passing item is listed before the failing one"
        remedy = main.locator("p", has_text="What to do:").first
        assert remedy.inner_text() == f"What to do: {PermissionDeniedError.remedy}"
        box, column = remedy.bounding_box(), main.bounding_box()
        assert box and column and box["x"] + box["width"] <= column["x"] + column["width"]
        assert remedy.evaluate("e => e.scrollWidth <= e.clientWidth")
        statuses = [row[0].split()[-1] for row in table_rows(page.locator("table").last)]
        assert statuses[0] == "fail" and statuses.count("fail") == 1, statuses
        order = {"fail": 0, "pending": 1, "pass": 2, "skipped": 3}
        assert statuses == sorted(statuses, key=order.__getitem__), statuses
        assert "permission_query_orders" not in text  # ids stay in JSON and metrics

        # every account valued at the simulator's prices; KFEE has none and is named
        page.get_by_text(f"Balance: {values['MASTER'].usd}", exact=True).wait_for()
        daivon = f"Balance: {values['USER:daivon'].usd} + 1250.00 KFEE (no price)"
        page.get_by_text(daivon, exact=True).wait_for()
        page.screenshot(path=str(tmp_path / "overview.png"))
        overview_html = page.content()

        page.get_by_role("link", name="Balances").click()
        totals = page.locator("table").first
        totals.get_by_text("all accounts").wait_for(timeout=15_000)
        rows = {row[0]: row[1:] for row in table_rows(totals)}
        assert rows["MASTER"] == [values["MASTER"].usd, "–"]
        assert rows["USER:daivon"] == [
            f"{values['USER:daivon'].usd} + 1250.00 KFEE (no price)",
            "KFEE (no USD pair on Kraken)",
        ]
        assert rows["USER:tania_gilbert"] == [values["USER:tania_gilbert"].usd, "–"]
        fleet = sum((v.priced for v in values.values()), Decimal(0))
        assert rows["all accounts"][0] == f"${fleet:,.2f} + 1250.00 KFEE (no price)"
        page.locator("[data-testid='stDataFrame'] canvas").first.wait_for(timeout=10_000)
        assert page.locator("[data-testid='stException']").count() == 0
        balances_html = page.content()

        page.get_by_role("link", name="Timeline").click()
        page.get_by_text("Connection timeline").wait_for(timeout=15_000)
        page.locator(
            "[data-testid='stVegaLiteChart'] canvas, [data-testid='stVegaLiteChart'] svg"
        ).first.wait_for(timeout=20_000)
        assert page.locator("[data-testid='stException']").count() == 0
        timeline_html = page.content()
    assert (tmp_path / "overview.png").stat().st_size > 10_000
    served = overview_html + balances_html + timeline_html + "".join(frames) + log.read_text()
    for spec in builtin_scenario("demo").keys:
        assert spec.secret not in served and spec.key not in served
        assert not re.search(re.escape(spec.secret[:24]), served)
    assert frames, "no websocket payload was captured"

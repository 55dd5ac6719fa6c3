"""Every page's URL works on a freshly started server, bookmarked or from an alert, before anyone
has opened ``/``: the real navigation (page titles, not file names) and the wide layout."""

from __future__ import annotations

from pathlib import Path

from testkit.browser import chromium_page
from testkit.procs import up_process

#: URL path -> the page's title in the navigation and its heading
PAGES = {
    "timeline": "Timeline",
    "trading": "Trading",
    "deploys": "Deploys",
    "balances": "Balances",
    "nonce": "Nonce & clock",
    "gateway": "Gateway",
    "settings": "Settings",
}
NAVIGATION = ["Overview", *PAGES.values()]


def test_each_page_opened_first_on_a_fresh_server_has_the_real_navigation(
    tmp_path: Path,
) -> None:
    with (
        up_process(
            {}, tmp_path, command="demo", args=["--data-dir", str(tmp_path / "data")]
        ) as demo,
        chromium_page() as page,
    ):  # `/` is never opened
        for path, title in PAGES.items():
            page.goto(f"{demo.url}/{path}")
            nav = page.locator("[data-testid='stSidebarNav']")
            nav.get_by_text("Overview", exact=True).wait_for(timeout=60_000)
            links = nav.locator("[data-testid='stSidebarNavLink']")
            shown = [links.nth(i).inner_text().splitlines()[-1] for i in range(links.count())]
            assert shown == NAVIGATION, (path, shown)
            page.get_by_role("heading", name=title).first.wait_for(timeout=60_000)
            width = page.locator("[data-testid='stMainBlockContainer']").bounding_box()
            assert width is not None and width["width"] > 1000, (path, width)  # wide, not 736 px

"""6. Dashboard cost: not yet measured (needs the Streamlit app).

To be filled in when the Streamlit pages exist (issue 7 item 6): server-side run time of the
overview and timeline pages with 50 accounts and 10,000 events (AppTest), time until the overview
is visible in headless Chromium, and resident memory of ``krakenwatch up`` after 10 minutes with
20 accounts. Until then this section reports "not yet measured", never a number.
"""

from __future__ import annotations

from .kit import Context
from .report import Section, Table, Verdict

NUMBER = 6
TITLE = "Dashboard cost"
TARGET = (
    "none set in issue 7 yet (item 6: page run time, time to visible overview, resident memory)."
)
PLACEHOLDER = "not yet measured (needs the Streamlit app)"
MEASUREMENTS = (
    "overview page server-side run time, 50 accounts, 10,000 events (AppTest)",
    "timeline page server-side run time, 50 accounts, 10,000 events (AppTest)",
    "time until the overview is visible in headless Chromium",
    "resident memory of `krakenwatch up` after 10 minutes with 20 accounts",
)


def run(ctx: Context) -> Section:
    table = Table(["measurement", "value"])
    for what in MEASUREMENTS:
        table.add(what, PLACEHOLDER)
    return Section(
        NUMBER,
        f"{TITLE}: {PLACEHOLDER}",
        TARGET,
        how=f"{PLACEHOLDER}; see `bench/dashboard_cost.py`.",
        tables=[table],
        verdicts=[Verdict("item 6 of issue 7", PLACEHOLDER, None)],
        placeholder=True,
    )

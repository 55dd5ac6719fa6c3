"""The README's and the docs' tables stay equal to the code's: the exit codes of every command,
every variable, every metric family (the checklist's titles: see test_views)."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from broker.variables import SETTINGS
from dashboard.cli import EXIT_CODES
from dashboard.config import SHARED_VARIABLES, Settings
from testkit.bots import krakenex_api
from testkit.env import ROOT
from testkit.gateway import demo_bot
from testkit.net import free_port, http_get
from testkit.procs import up_process


def rows(markdown: str, heading: str) -> list[list[str]]:
    """The cells of the table(s) under ``heading`` (up to the next heading of any level)."""
    section = markdown.split(heading + "\n", 1)[1]
    section = re.split(r"^#{1,6} ", section, maxsplit=1, flags=re.M)[0]
    found = []
    for line in section.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            found.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return found[1:] if found else found  # without the header row


def test_the_readme_lists_every_commands_exit_codes() -> None:
    readme = (ROOT / "README.md").read_text()
    table = [r for r in rows(readme, "## Commands and exit codes") if len(r) == 2]
    listed = {
        command.replace("`", ""): codes
        for command, codes in table
        if re.match(r"^\d+ ", codes)  # the exit codes table, not the commands one
    }
    expected = {
        command: "; ".join(f"{code} {meaning}" for code, meaning in codes.items())
        for command, codes in EXIT_CODES.items()
    }
    assert listed == expected


def backticked(cell: str) -> list[str]:
    return re.findall(r"`([A-Z][A-Z0-9_<>]+)`", cell)


def test_the_configuration_reference_lists_every_variable() -> None:
    page = (ROOT / "docs" / "configuration.md").read_text()
    listed = {name for row in rows(page, "## Variables") for name in backticked(row[0])}
    accounts = {
        "KRAKEN_MASTER_API_KEY",
        "KRAKEN_MASTER_API_SECRET",
        "KRAKEN_USER_<NAME>_API_KEY",
        "KRAKEN_USER_<NAME>_API_SECRET",
        "KRAKEN_<ACCOUNT>_NONCE_UNIT",
        "KRAKEN_<ACCOUNT>_TIER",
        "KRAKEN_<ACCOUNT>_CANCEL_AFTER",
    }
    assert listed == set(SETTINGS) | accounts
    # and the code agrees with itself: every setting the dashboard reads is a known variable
    read = {f.metadata["variable"].name for f in fields(Settings) if "variable" in f.metadata}
    read |= {variable.name for variable in SHARED_VARIABLES.values()}
    assert read <= set(SETTINGS)
    readme = (ROOT / "README.md").read_text()
    assert {n for row in rows(readme, "## Configuration") for n in backticked(row[0])} <= listed


def documented_metrics() -> set[str]:
    page = (ROOT / "docs" / "metrics.md").read_text()
    names = set()
    for heading in ("## Metrics", "## Metrics (`GET /metrics` on the gateway)"):
        names |= {
            m for row in rows(page, heading) for m in re.findall(r"`(krakenwatch_\w+)`", row[0])
        }
    return names


def exported(text: str) -> set[str]:
    """Family names as a scrape shows them (counters with ``_total``)."""
    found = set()
    for family in text_string_to_metric_families(text):
        found.add(family.name + "_total" if family.type == "counter" else family.name)
    return found


def test_the_metrics_reference_lists_every_family_a_scrape_shows(tmp_path: Path) -> None:
    args = ["--data-dir", str(tmp_path / "data"), "--gateway", "--gateway-port", str(free_port())]
    with up_process({}, tmp_path, command="demo", args=args) as demo:
        demo.wait_checked()
        found = demo_bot(demo.log.read_text())
        gateway = found.gateway_url
        assert (
            krakenex_api(found.key, found.secret, gateway).query_private("Balance")["error"] == []
        )
        dashboard = exported(http_get(demo.url + "/metrics")[2])
        own = exported(http_get(gateway + "/metrics")[2])
    assert own <= dashboard, "the dashboard's /metrics carries the gateway's families too"
    assert dashboard == documented_metrics()


def test_the_gateway_page_lists_every_method_of_the_allowlist_by_kind() -> None:
    from gateway.methods import PRIVATE_METHODS

    page = (ROOT / "docs" / "gateway.md").read_text()
    table = page.split("**The methods the gateway knows.**", 1)[1].split("\n\n", 2)[1]
    listed: dict[str, set[str]] = {}
    for line in table.splitlines()[2:]:
        kind, methods = (cell.strip() for cell in line.strip("|").split(" | "))
        listed[kind] = set(re.findall(r"`([A-Za-z0-9/]+)`", methods))
    by_kind: dict[str, set[str]] = {}
    for name, info in PRIVATE_METHODS.items():
        by_kind.setdefault(info.kind, set()).add(name)
    assert listed == by_kind

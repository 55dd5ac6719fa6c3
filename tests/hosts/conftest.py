"""Fixtures of the multi-host fault suite.

* ``require_netns``: skips the test, with the reason, where this machine does not allow network
  namespaces (not root, ``ip netns add`` fails): such a test is never counted as passed.
* ``campaign`` (once per module that asks for it): the cluster of
  :mod:`testkit.hostcluster` under :data:`ROUNDS` rounds of every fault kind of
  :mod:`testkit.hostfaults`, judged by :mod:`testkit.hostcheck`; the cluster is torn down before
  the tests look at the results.

The table of the rounds is printed at the end of the run (terminal summary), passed or failed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from testkit.hostcheck import RoundResult, kind_rows, render_table
from testkit.hostcluster import ClusterSettings, cluster
from testkit.hostfaults import KINDS, Campaign
from testkit.netns import lab_namespaces, netns_support

#: rounds of each fault kind (three keep the suite within about four minutes on two cores)
ROUNDS = 3
TABLES: list[str] = []
#: the labs this run built (to look for leftovers of its own only: other runs may be going on)
LAB_IDS: list[str] = []


def skip_without_netns() -> None:
    support = netns_support()
    if not support.ok:
        pytest.skip(f"network namespaces are not available here: {support.reason}")


@pytest.fixture
def require_netns() -> None:
    skip_without_netns()


@dataclass
class Outcome:
    results: list[RoundResult]
    #: the simulator's ``/_sim/stats`` at the end
    stats: dict[str, Any]
    #: journal entries per key name
    journaled: dict[str, int]
    recovery_bound_s: float
    lab_id: str
    #: processes of the lab still alive after the teardown
    survivors: list[int]
    seconds: float


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    skip_without_netns()
    started = time.monotonic()
    with cluster(tmp_path_factory.mktemp("hosts"), ClusterSettings()) as running:
        run = Campaign(running, say=lambda line: print(f"[hosts] {line}", flush=True))
        try:
            results = run.run(ROUNDS)
        except Exception:  # the rounds that did run, for the summary
            table = render_table(kind_rows(run.judge(), KINDS)) if run.rounds else "(none)"
            TABLES.append(f"multi-host faults, broken off; the rounds before:\n{table}")
            raise
        stats = running.sim_get("/_sim/stats")
        lab_id = running.lab.id
        LAB_IDS.append(lab_id)
    journaled: dict[str, int] = {}
    for entry in run.journal.entries:
        journaled[entry["key"]] = journaled.get(entry["key"], 0) + 1
    seconds = time.monotonic() - started
    table = render_table(kind_rows(results, KINDS))
    TABLES.append(
        f"multi-host faults ({ROUNDS} rounds of each, lease {running.settings.lease_s:g} s, "
        f"{seconds:.0f} s in all):\n{table}"
    )
    survivors = running.lab.survivors()
    yield Outcome(results, stats, journaled, run.recovery_bound_s, lab_id, survivors, seconds)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for table in TABLES:
        terminalreporter.write_sep("-", "multi-host fault suite")
        terminalreporter.write_line(table)
    leftovers = [ns for lab_id in LAB_IDS for ns in lab_namespaces(lab_id)]
    if leftovers:
        terminalreporter.write_line(f"namespaces left behind: {leftovers}")

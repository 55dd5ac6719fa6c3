"""The contrast that shows the suite can see a broken store: the same three gateway hosts, each on
its own file store (nothing coordinates them), get invalid nonces and requests of one key in
flight at once at the simulator, and the checker says so."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from testkit.hostcheck import RoundTimes, judge_round, violations
from testkit.hostcluster import ClusterSettings, cluster
from testkit.hostfaults import Campaign
from testkit.net import eventually

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("require_netns")]


def test_hosts_with_their_own_file_stores_collide_and_the_checker_sees_it(
    tmp_path: Path,
) -> None:
    with cluster(tmp_path, ClusterSettings(store="file", latency_ms=(0.0, 20.0))) as running:
        run = Campaign(running)
        times = RoundTimes("gateway-kill", 1, "gw1", begin=time.monotonic())

        def collided() -> bool:
            run.journal.poll()
            return any(e["error"] for e in run.journal.entries)

        eventually(collided, 60, interval=0.5, what="a collision between the hosts")
        times.started = times.healed = times.end = time.monotonic()
        running.stop_bots()
        run.logs.poll()
        run.journal.poll()
    result = judge_round(times, run.logs.calls, run.journal.entries, before_s=1.0)
    assert result.invalid_nonces > 0 and result.peak_in_flight > 1, result
    found = "\n".join(violations([result], "gateway-kill", 10.0))
    assert "invalid nonces at the simulator" in found, found

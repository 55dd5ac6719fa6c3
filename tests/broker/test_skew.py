"""Clock skew estimation against the simulator's clock offset, over real HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker import KrakenClient, estimate_clock_skew, single_sample_skew
from testkit.sim import one_key_simulator


@pytest.mark.parametrize("offset", [-2.3, 0.37, 1.5])
def test_estimate_brackets_the_true_offset(tmp_path: Path, offset: float) -> None:
    with one_key_simulator("skew", clock_offset_s=offset) as (sim, key, secret):
        api = KrakenClient(key, secret, base_url=sim.url, store_dir=tmp_path)
        estimate = estimate_clock_skew(api, max_probes=10, target_uncertainty_s=0.02)
        # the simulator's clock is `offset` ahead of ours, so local minus Kraken is -offset
        assert abs(estimate.offset_s - (-offset)) <= estimate.uncertainty_s + 0.005
        assert estimate.uncertainty_s <= 0.05
        assert estimate.probes <= 10
        naive = single_sample_skew(api)
        assert naive.uncertainty_s >= 0.5


def test_deadline_limits_probing(tmp_path: Path) -> None:
    with one_key_simulator("skew-deadline", clock_offset_s=0.37) as (sim, key, secret):
        api = KrakenClient(key, secret, base_url=sim.url, store_dir=tmp_path)
        estimate = estimate_clock_skew(
            api, max_probes=10, target_uncertainty_s=0.001, deadline_s=0.0
        )
        assert estimate.probes == 1
        assert abs(estimate.offset_s + 0.37) <= estimate.uncertainty_s + 0.005

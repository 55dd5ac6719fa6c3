"""Clock skew estimation against the simulator's clock offset, over real HTTP."""

from __future__ import annotations

import time
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


def test_the_single_sample_baseline_is_unbiased(tmp_path: Path) -> None:
    """Kraken's whole second S stands for [S, S + 1): the naive estimate compares midpoints, so
    its own interval contains the true offset at every phase of the second."""
    offset = 0.37
    with one_key_simulator("skew-naive", clock_offset_s=offset) as (sim, key, secret):
        api = KrakenClient(key, secret, base_url=sim.url, store_dir=tmp_path)
        errors = []
        for phase in (0.1, 0.3, 0.5, 0.7, 0.9):
            time.sleep((phase - time.time() % 1.0) % 1.0)
            naive = single_sample_skew(api)
            errors.append(naive.offset_s - (-offset))
            assert abs(naive.offset_s - (-offset)) <= naive.uncertainty_s, (phase, naive)
        assert max(abs(e) for e in errors) <= 0.5 + 0.05


@pytest.mark.parametrize(
    ("offset", "inside"), [(0.2, True), (-0.3, True), (2.6, False), (-3.4, False)]
)
def test_sampling_stops_once_the_bound_is_decided(
    tmp_path: Path, offset: float, inside: bool
) -> None:
    bound = 1.0
    with one_key_simulator("skew-decide", clock_offset_s=offset) as (sim, key, secret):
        api = KrakenClient(key, secret, base_url=sim.url, store_dir=tmp_path)
        quick = estimate_clock_skew(
            api, max_probes=10, target_uncertainty_s=0.001, decide_bound_s=bound
        )
        precise = estimate_clock_skew(api, max_probes=10, target_uncertainty_s=0.001)
    low, high = quick.offset_s - quick.uncertainty_s, quick.offset_s + quick.uncertainty_s
    # the verdict the early stop gives is the one the precise estimate gives
    assert (-bound <= low and high <= bound) is inside
    assert (abs(precise.offset_s) <= bound) is inside
    assert low - 0.005 <= -offset <= high + 0.005, "the reported interval contains the truth"
    assert quick.probes < precise.probes

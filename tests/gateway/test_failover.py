"""Two gateways sharing a Redis that fails over (a primary, a replica, three Sentinels on
127.0.0.1, the replica replicating through a relay that can go mute): a captured order never runs
twice, because the replay memory counts a request as remembered only once the replica has it; the
contrast, a store that asks for no replica, forgets it in the failover and the order runs again."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from simulator import Simulator
from testkit.net import free_port
from testkit.rawclient import LIMIT_ORDER, RawResponse, form, fresh_nonce, signed_post
from testkit.relay import Relay, relay
from testkit.sentinel import SentinelGroup, sentinel_group

from .conftest import StartGateway


def place(url: str, key: str, secret: str, nonce: int) -> RawResponse:
    return signed_post(
        url, "AddOrder", key=key, secret=secret, body=form(nonce, **LIMIT_ORDER), nonce=nonce
    )


@contextmanager
def lagging_group(tmp_path: Path) -> Iterator[tuple[SentinelGroup, Relay]]:
    with (
        relay(("127.0.0.1", free_port())) as link,
        sentinel_group(tmp_path / "redis", through=link) as group,
    ):
        yield group, link


def fail_over(group: SentinelGroup) -> None:
    """Kill the primary; the replica takes over; the old primary comes back as its replica."""
    group.primary.stop(kill=True)
    group.wait_primary(group.replica.address)
    group.primary.start()
    group.wait_replicated()


@pytest.mark.slow
def test_a_captured_order_never_runs_twice_across_a_failover(
    tmp_path: Path, sim_key: tuple[Simulator, str, str], start_gateway: StartGateway
) -> None:
    sim, key, secret = sim_key
    with lagging_group(tmp_path) as (group, link):
        store = group.spec(lease=2)
        first, second = (start_gateway(sim.url, nonce_store=store) for _ in range(2))
        link.mute.set()  # the replica falls behind: nothing it lacks may count as remembered
        refused = place(first.url, key, secret, fresh_nonce())
        assert refused.error and refused.error[0].startswith("EService:Unavailable"), refused.error
        assert "NotReplicatedError" in refused.error[0] and sim.stats(key).requests == 0
        link.mute.clear()
        link.cut()  # the replica reconnects and catches up
        group.wait_caught_up()
        placed = fresh_nonce()
        assert place(first.url, key, secret, placed).error == []
        link.mute.set()  # whatever is lost in the failover now, the order's digest is not
        fail_over(group)
        replay = place(second.url, key, secret, placed)
        assert replay.error == ["EAPI:Invalid nonce"], replay.error
        assert sim.stats(key).requests == 1  # Kraken saw the order once


@pytest.mark.slow
def test_without_replicas_a_failover_can_forget_a_captured_order(
    tmp_path: Path, sim_key: tuple[Simulator, str, str], start_gateway: StartGateway
) -> None:
    sim, key, secret = sim_key
    with lagging_group(tmp_path) as (group, link):
        store = group.spec(lease=2, replicas=0)
        first, second = (start_gateway(sim.url, nonce_store=store) for _ in range(2))
        link.mute.set()  # replication lags, unnoticed
        placed = fresh_nonce()
        assert place(first.url, key, secret, placed).error == []
        fail_over(group)
        replay = place(second.url, key, secret, placed)
        assert replay.error == [], replay.error  # the replica never had it: it runs again
        stats = sim.stats(key)
        assert stats.requests == stats.accepted == 2 and stats.invalid_nonce == 0

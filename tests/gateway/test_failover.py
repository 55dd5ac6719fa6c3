"""Two gateways sharing a Redis that fails over (a primary, a replica, three Sentinels on
127.0.0.1, the replica replicating through a relay that can go mute): a captured order never runs
twice, because the replay memory counts a request as remembered only once the replica has it; and
with a store that asks for no replica, whose failover does forget it, because a request older than
the new primary is refused."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from gateway.server import GatewayThread
from simulator import Simulator
from testkit.net import free_port
from testkit.rawclient import LIMIT_ORDER, RawResponse, form, fresh_nonce, signed_post
from testkit.redis import RedisServer
from testkit.relay import Relay, relay
from testkit.sentinel import SentinelGroup, sentinel_group

from .conftest import StartGateway


def place(url: str, key: str, secret: str, nonce: int) -> RawResponse:
    return signed_post(
        url, "AddOrder", key=key, secret=secret, body=form(nonce, **LIMIT_ORDER), nonce=nonce
    )


@contextmanager
def two_gateways(
    tmp_path: Path, sim: Simulator, start_gateway: StartGateway, **query: object
) -> Iterator[tuple[SentinelGroup, Relay, GatewayThread, GatewayThread]]:
    """The lagging store (``query`` in its spec, lease 2 s) and two gateways sharing it."""
    with (
        relay(("127.0.0.1", free_port())) as link,
        sentinel_group(tmp_path / "redis", through=link) as group,
    ):
        store = group.spec(lease=2, **query)
        first, second = (start_gateway(sim.url, nonce_store=store) for _ in range(2))
        yield group, link, first, second


def digests(server: RedisServer) -> set[str]:
    """The replay digests a Redis holds."""
    return set(server.cli("KEYS", "krakenwatch:replay:*").split())


def fail_over(group: SentinelGroup) -> None:
    """Kill the primary; the replica takes over; the old primary comes back as its replica."""
    group.primary.stop(kill=True)
    group.wait_primary(group.replica.address)
    group.rejoin_old_primary()


@pytest.mark.slow
def test_a_captured_order_never_runs_twice_across_a_failover(
    tmp_path: Path, sim_key: tuple[Simulator, str, str], start_gateway: StartGateway
) -> None:
    sim, key, secret = sim_key
    with two_gateways(tmp_path, sim, start_gateway) as (group, link, first, second):
        link.mute.set()  # the replica falls behind: nothing it lacks may count as remembered
        refused = place(first.url, key, secret, fresh_nonce())
        assert refused.error and refused.error[0].startswith("EService:Unavailable"), refused.error
        assert "NotReplicatedError" in refused.error[0] and sim.stats(key).requests == 0
        link.mute.clear()
        link.cut()  # the replica reconnects and catches up
        group.wait_caught_up()
        placed = fresh_nonce()
        assert place(first.url, key, secret, placed).error == []
        remembered = digests(group.primary)
        link.mute.set()  # whatever is lost in the failover now, the order's digest is not
        fail_over(group)
        assert digests(group.replica) >= remembered  # every acknowledged digest came through
        replay = place(second.url, key, secret, placed)
        assert replay.error == ["EAPI:Invalid nonce"], replay.error
        assert sim.stats(key).requests == 1  # Kraken saw the order once


@pytest.mark.slow
def test_without_replicas_the_new_primary_fences_off_orders_captured_before_it(
    tmp_path: Path, sim_key: tuple[Simulator, str, str], start_gateway: StartGateway
) -> None:
    sim, key, secret = sim_key
    with two_gateways(tmp_path, sim, start_gateway, replicas=0) as (group, link, first, second):
        assert place(first.url, key, secret, fresh_nonce()).error == []  # a store in use
        group.wait_caught_up()
        link.mute.set()  # replication lags, unnoticed: the order's digest never reaches it
        placed = fresh_nonce()
        assert place(first.url, key, secret, placed).error == []
        fail_over(group)
        assert len(digests(group.replica)) == 1  # the order's digest is gone: only the first's
        replay = place(second.url, key, secret, placed)
        # ...but a request older than the new primary is refused all the same
        assert replay.error == ["EAPI:Invalid nonce"], replay.error
        assert sim.stats(key).requests == 2
        fresh = place(second.url, key, secret, fresh_nonce())
        assert fresh.error == [] and sim.stats(key).accepted == 3

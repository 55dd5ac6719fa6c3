"""Three gateway hosts on one key set, sharing a Redis (primary, two replicas, three Sentinels)
across a network, each with its bots, under rounds of faults: a gateway host cut from Redis, the Redis
primary cut off (the Sentinels fail over), a gateway killed and restarted, a gateway frozen past
its lease, a gateway's link to Kraken restarted.

What must hold in every round (see testkit/hostcheck.py): no invalid nonce at the simulator, at
most one request per key in flight there, no call told ok that the simulator did not accept, no
call told "nothing was sent" that reached it, nothing sent by a host cut from Redis, every host
serving again within one lease and 5 s after the heal. Calls told failed that did reach the
simulator are reported, not judged: an answer lost on a cut link may belong to a request that
arrived.
"""

from __future__ import annotations

import pytest

from testkit.hostcheck import violations
from testkit.hostfaults import KINDS
from testkit.netns import lab_namespaces

from .conftest import ROUNDS, Outcome

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.mark.parametrize("kind", KINDS)
def test_what_must_hold_holds_in_every_round_of(kind: str, campaign: Outcome) -> None:
    rounds = [r for r in campaign.results if r.times.kind == kind]
    assert len(rounds) == ROUNDS
    assert violations(campaign.results, kind, campaign.recovery_bound_s) == []


def test_the_simulator_never_saw_two_requests_of_a_key_at_once_nor_an_invalid_nonce(
    campaign: Outcome,
) -> None:
    keys = campaign.stats["keys"]
    assert keys, campaign.stats
    for name, stats in keys.items():
        assert stats["requests"] > 0, name
        assert stats["max_concurrency"] == 1, (name, stats)
        assert stats["invalid_nonce"] == 0, (name, stats)


def test_the_journal_holds_every_request_the_simulator_counted(campaign: Outcome) -> None:
    counted = {name: stats["requests"] for name, stats in campaign.stats["keys"].items()}
    assert campaign.journaled == counted


def test_the_suite_tore_everything_down(campaign: Outcome) -> None:
    assert lab_namespaces(campaign.lab_id) == []
    assert campaign.survivors == []

"""Rounds of faults on a running :class:`~testkit.hostcluster.Cluster`, under the bots' traffic,
and their results (:mod:`testkit.hostcheck`).

The fault kinds (:data:`KINDS`), each aimed at one gateway host in turn (or the Redis primary):

* ``gateway-partition``: the host's link to the store network goes down (Redis and the Sentinels
  vanish for it) for one lease and a second, then comes back;
* ``primary-partition``: the Redis primary's link goes down until the Sentinels have promoted a
  replica and at least one lease and a second has passed; then it comes back and rejoins as a
  replica of the new primary (waited for before the next round);
* ``gateway-kill``: ``kill -9`` of the gateway, started again at once (the heal is the restart);
* ``gateway-pause``: ``SIGSTOP`` for one lease and a second (past its lease), then ``SIGCONT``;
* ``link-restart``: the host's link to the simulator goes down, past the gateways' request
  timeout (a request caught on it ends "outcome unknown", and may still arrive later), then up.

A round: a short window of traffic (the "before" throughput), the fault, its heal, a wait until
every gateway host got an ok answer for a call made after the heal (the recovery), a window of
traffic after it. Every wait polls a condition with a deadline; the only fixed intervals are the
faults' durations and the measurement windows.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .hostcheck import BotLogs, Journal, RoundResult, RoundTimes, judge_round
from .hostcluster import Cluster, GatewayHost
from .net import eventually

__all__ = ["KINDS", "Campaign", "Timing"]

KINDS = (
    "gateway-partition",
    "primary-partition",
    "gateway-kill",
    "gateway-pause",
    "link-restart",
)
#: how long after its heal a fault may keep the cluster from serving, past the lease
RECOVERY_MARGIN_S = 5.0


@dataclass(frozen=True)
class Timing:
    before_s: float = 2.0
    after_s: float = 3.0
    #: ``None``: one second past the gateways' request timeout, so that a request caught on the
    #: link times out (its outcome unknown) and may still be delivered when the link is back
    link_down_s: float | None = None
    #: how long past a round's recovery bound the suite still waits (to measure a miss)
    overtime_s: float = 20.0
    failover_s: float = 30.0
    rejoin_s: float = 60.0


@dataclass
class Campaign:
    """Runs rounds of faults on ``cluster`` and judges them (``say``: progress lines)."""

    cluster: Cluster
    timing: Timing = field(default_factory=Timing)
    say: Callable[[str], None] = print
    rounds: list[RoundTimes] = field(default_factory=list)

    def __post_init__(self) -> None:
        paths = {g.name: g.bot_log for g in self.cluster.gateways if g.bot_log is not None}
        self.logs = BotLogs(paths)
        self.journal = Journal(self.cluster.sim_get)

    @property
    def lease_s(self) -> float:
        return self.cluster.settings.lease_s

    @property
    def recovery_bound_s(self) -> float:
        return self.lease_s + RECOVERY_MARGIN_S

    # ------------------------------------------------------------------ running
    def run(self, rounds: int, kinds: Sequence[str] = KINDS) -> list[RoundResult]:
        """``rounds`` rounds of each kind (interleaved); then the bots stop, and each round is
        judged (the cluster still runs: its journal is read last)."""
        if self._wait_serving(0.0, self.timing.failover_s) is None:
            raise AssertionError(
                f"not every gateway host served a call within {self.timing.failover_s:g} s"
            )
        for index in range(rounds):
            for number, kind in enumerate(kinds):
                gateways = self.cluster.gateways
                target = gateways[(index + number) % len(gateways)]
                self.rounds.append(self._round(kind, index + 1, target))
                self.journal.poll()
        self.cluster.stop_bots()
        return self.judge()

    def judge(self) -> list[RoundResult]:
        """Every round so far, judged on the bots' logs and then the simulator's journal (read
        after the logs: every request a bot heard of is in it by then)."""
        self.logs.poll()
        self.journal.poll()
        calls, entries = self.logs.calls, self.journal.entries
        return [judge_round(t, calls, entries, self.timing.before_s) for t in self.rounds]

    def _wait_serving(self, since: float, timeout: float) -> float | None:
        """When every gateway host got an ok for a call made at or after ``since`` (None if
        not within ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = self.logs.all_ok_since(since)
            if done is not None:
                return done
            time.sleep(0.05)
        return None

    def _round(self, kind: str, index: int, target: GatewayHost) -> RoundTimes:
        times = RoundTimes(kind, index, target.name, begin=time.monotonic())
        time.sleep(self.timing.before_s)  # the "before" window (a measured interval)
        times.started = time.monotonic()
        FAULTS[kind](self, target, times)
        if not times.healed:
            times.healed = time.monotonic()
        times.recovered = self._wait_serving(
            times.healed, self.recovery_bound_s + self.timing.overtime_s
        )
        if times.recovered is not None:
            time.sleep(self.timing.after_s)  # the "after" window (a measured interval)
        self._settle(kind)
        times.end = time.monotonic()
        recovery = "never" if times.recovered is None else f"{times.recovered - times.healed:.1f} s"
        self.say(f"{kind} #{index} on {times.target}: recovered after {recovery}")
        return times

    def _settle(self, kind: str) -> None:
        """Back to the starting shape before the next round: after a failover, the old primary
        follows the new one, in sync, and every Sentinel knows it."""
        if kind == "primary-partition":
            store = self.cluster.store
            assert store is not None
            store.wait_in_sync(self.timing.rejoin_s)

    # ------------------------------------------------------------------ faults
    def _hold(self, since: float, seconds: float) -> None:
        """Keep a fault on until ``seconds`` after ``since`` (the fault's duration)."""
        left = since + seconds - time.monotonic()
        if left > 0:
            time.sleep(left)

    def gateway_partition(self, target: GatewayHost, times: RoundTimes) -> None:
        lab = self.cluster.lab
        times.cut_host = target.name
        lab.cut(target.name, "store")
        self._hold(times.started, self.lease_s + 1)
        lab.heal(target.name, "store")

    def primary_partition(self, target: GatewayHost, times: RoundTimes) -> None:
        lab, store = self.cluster.lab, self.cluster.store
        assert store is not None
        old = times.target = store.primary

        def promoted() -> str | None:
            named = store.named_primary()
            return named if named != old else None

        lab.cut(old, "store")
        try:
            new = eventually(
                promoted,
                self.timing.failover_s,
                interval=0.1,
                what="the Sentinels to promote a replica",
            )
            times.note = (
                f"failover from {old} to {new} after {time.monotonic() - times.started:.1f} s"
            )
            self.say(times.note)
            store.primary = new
            self._hold(times.started, self.lease_s + 1)
        finally:
            lab.heal(old, "store")
        times.healed = time.monotonic()

    def gateway_kill(self, target: GatewayHost, times: RoundTimes) -> None:
        self.cluster.signal_gateway(target, signal.SIGKILL)
        times.healed = time.monotonic()
        self.cluster.start_gateway(target)
        self.cluster.wait_listening(target)

    def gateway_pause(self, target: GatewayHost, times: RoundTimes) -> None:
        self.cluster.signal_gateway(target, signal.SIGSTOP)
        try:
            self._hold(times.started, self.lease_s + 1)
        finally:
            self.cluster.signal_gateway(target, signal.SIGCONT)

    def link_restart(self, target: GatewayHost, times: RoundTimes) -> None:
        lab = self.cluster.lab
        down = self.timing.link_down_s
        if down is None:
            down = self.cluster.settings.request_timeout_s + 1
        lab.cut(target.name, "kraken")
        self._hold(times.started, down)
        lab.heal(target.name, "kraken")


FAULTS: dict[str, Callable[[Campaign, GatewayHost, RoundTimes], None]] = {
    "gateway-partition": Campaign.gateway_partition,
    "primary-partition": Campaign.primary_partition,
    "gateway-kill": Campaign.gateway_kill,
    "gateway-pause": Campaign.gateway_pause,
    "link-restart": Campaign.link_restart,
}

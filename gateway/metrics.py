"""The gateway's Prometheus metrics, on a private registry, and its recent errors.

The families (names, types, help texts, labels, buckets) are the table of
:mod:`gateway.families`; :class:`GatewayMetrics` makes them and feeds them: counters and histograms
as calls complete, gauges read from the lanes and the client credentials at scrape time.

The families live on the gateway's own registry (:attr:`GatewayMetrics.registry`, what the
gateway's ``/metrics`` serves) and, when embedded, also on the host's (``registry=``: under ``up
--gateway`` the dashboard's ``/metrics`` shows them too, while the gateway's port shows none of the
dashboard's balances). The dashboard already counts ``krakenwatch_invalid_nonce_errors_total``:
pass its counter as ``invalid_nonces`` so one process exports one family.

The same calls feed :class:`~gateway.traffic.Traffic`, the recent picture a page draws.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .answers import Reply, code_label
from .families import (
    ABANDONED_CALLS,
    AUTH_FAILURES,
    CREDENTIAL_FAMILIES,
    GUARD_FAMILIES,
    INVALID_NONCES,
    KRAKEN_ERRORS,
    LANE_FAMILIES,
    PUBLIC_REQUESTS,
    QUEUE_WAIT,
    REQUESTS,
    UPSTREAM_DURATION,
)
from .guardview import GuardSnapshot
from .traffic import ErrorRecord, Traffic

__all__ = [
    "CONTENT_TYPE",
    "WATCHED_CODES",
    "CredentialsGauge",
    "ErrorRecord",
    "GatewayMetrics",
    "LaneGauge",
]

C = TypeVar("C", bound=Collector)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Kraken answers the gateway exists to prevent (or must count): exported from 0 per account
WATCHED_CODES = (
    "EAPI:Invalid nonce",
    "EAPI:Rate limit exceeded",
    "EGeneral:Temporary lockout",
    "EOrder:Rate limit exceeded",
)


@dataclass(frozen=True)
class LaneGauge:
    """What the gauges show for one account at scrape time."""

    account: str
    counter: float
    limit: float
    depth: int
    #: refusals so far by reason (a counter)
    refused: Mapping[str, int]


@dataclass(frozen=True)
class CredentialsGauge:
    """What the client file's metrics show at scrape time."""

    clients: int
    #: the file on disk is refused; the previous credentials stay in use
    problem: bool
    #: reloads so far by outcome (a counter)
    reloads: Mapping[str, int]


class GatewayMetrics:
    """Counters fed as calls complete; gauges read from the lanes at scrape time."""

    def __init__(
        self,
        accounts: Iterable[str],
        lanes: Callable[[], Iterable[LaneGauge]],
        *,
        registry: CollectorRegistry | None = None,
        invalid_nonces: Counter | None = None,
        credentials: Callable[[], CredentialsGauge] | None = None,
        guard: Callable[[], GuardSnapshot] | None = None,
    ):
        # no *_created series: they double the series count and Prometheus does not need them
        disable_created_metrics()
        #: the gateway's own families (its ``/metrics``)
        self.registry = CollectorRegistry(auto_describe=True)
        self._homes = [self.registry] if registry is None else [self.registry, registry]
        #: calls answered but not counted yet (:meth:`record_later`), counted before any read
        self._pending: deque[tuple[tuple[Any, ...], dict[str, Any]]] = deque()
        self._add(_Flush(self.flush))  # first: every collection counts what is pending first
        self.requests = self._add(REQUESTS.counter())
        self.queue_wait = self._add(QUEUE_WAIT.histogram())
        self.upstream = self._add(UPSTREAM_DURATION.histogram())
        self.kraken_errors = self._add(KRAKEN_ERRORS.counter())
        self.abandoned = self._add(ABANDONED_CALLS.counter())
        self.public = self._add(PUBLIC_REQUESTS.counter())
        self.auth_failures = self._add(AUTH_FAILURES.counter())
        self.invalid_nonces = self._invalid_nonces(invalid_nonces)
        accounts = list(accounts)
        for account in accounts:  # exported from 0
            self.invalid_nonces.labels(account)
            self.abandoned.labels(account)
            for code in WATCHED_CODES:
                self.kraken_errors.labels(account, code)
        self._add(_LaneCollector(lanes))
        if credentials is not None:
            self._add(_CredentialsCollector(credentials))
        if guard is not None:
            self._add(_GuardCollector(guard, accounts))
        self._traffic = Traffic(accounts, WATCHED_CODES)
        self._children: dict[tuple[Any, ...], Any] = {}

    def _invalid_nonces(self, shared: Counter | None) -> Counter:
        """The gateway's own counter, or the host's (``shared``, already on the host's registry)."""
        if shared is None:
            return self._add(INVALID_NONCES.counter())
        self.registry.register(shared)
        return shared

    def _add(self, collector: C) -> C:
        for registry in self._homes:
            registry.register(collector)
        return collector

    @property
    def traffic(self) -> Traffic:
        """The recent picture of the calls, for a page (every answered call counted)."""
        self.flush()
        return self._traffic

    @property
    def recent_errors(self) -> tuple[ErrorRecord, ...]:
        """The last answers that were not ``ok``, oldest first."""
        return self.traffic.errors

    def record_later(self, *args: Any, **kwargs: Any) -> None:
        """:meth:`record`, once the answer is on its way (:meth:`flush`: the gateway's loop
        calls it right after, and every read of the metrics or the traffic first)."""
        self._pending.append((args, kwargs))

    def flush(self) -> None:
        """Count the calls :meth:`record_later` was given (from any thread)."""
        pending = self._pending
        while True:
            try:
                args, kwargs = pending.popleft()
            except IndexError:
                return
            self.record(*args, **kwargs)

    def record(
        self,
        client: str,
        account: str,
        method: str,
        reply: Reply,
        *,
        queue_wait_s: float | None = None,
        upstream_s: float | None = None,
        count_invalid_nonce: bool = True,
    ) -> None:
        """Count one answered private call (``method`` is already a label value);
        ``count_invalid_nonce=False``: the caller's own client reports Kraken's invalid nonces to
        the shared counter itself (the dashboard's monitor)."""
        self._child(self.requests, client, account, method, reply.outcome).inc()
        if queue_wait_s is not None:
            self._child(self.queue_wait, account).observe(queue_wait_s)
        if upstream_s is not None:
            self._child(self.upstream, account, method).observe(upstream_s)
        kraken_codes: list[str] = []
        if not reply.by_gateway:
            kraken_codes = [code_label(c) for c in reply.codes if not c.startswith("W")]
            for code in kraken_codes:
                self.kraken_errors.labels(account, code).inc()
            if reply.outcome == "invalid_nonce" and count_invalid_nonce:
                self.invalid_nonces.labels(account).inc()
        error = None
        if reply.outcome != "ok":
            error = ErrorRecord(
                time.time(),
                client,
                account,
                method,
                reply.outcome,
                reply.status,
                code_label(reply.codes[0]) if reply.codes else None,
                reply.by_gateway,
            )
        self._traffic.record(
            client,
            account,
            reply.outcome,
            kraken_codes=kraken_codes,
            queue_wait_s=queue_wait_s,
            error=error,
        )

    def _child(self, family: Any, *labels: str) -> Any:
        """``family.labels(*labels)``, looked up once: prometheus-client checks and converts the
        values on every ``labels`` call, and this is on every call's path."""
        key = (family, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = family.labels(*labels)
        return child

    def authenticated(self, client: str, ok: bool) -> None:
        """A named client's signature was right (``ok``) or wrong."""
        if not ok:
            self.auth_failures.labels(client).inc()
        self._traffic.authenticated(client, ok)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _Flush(Collector):
    """No family of its own: counts the pending calls before the families are collected."""

    def __init__(self, flush: Callable[[], None]):
        self.flush = flush

    def collect(self) -> Iterator[GaugeMetricFamily]:
        self.flush()
        return iter(())

    def describe(self) -> list[GaugeMetricFamily]:
        return []


class _LaneCollector(Collector):
    def __init__(self, lanes: Callable[[], Iterable[LaneGauge]]):
        self.lanes = lanes

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        level, limit, depth, refusals = (family.at_scrape() for family in LANE_FAMILIES)
        for lane in self.lanes():
            level.add_metric([lane.account], lane.counter)
            limit.add_metric([lane.account], lane.limit)
            depth.add_metric([lane.account], float(lane.depth))
            for reason, count in lane.refused.items():
                refusals.add_metric([lane.account, reason], float(count))
        yield from (level, limit, depth, refusals)


class _CredentialsCollector(Collector):
    def __init__(self, state: Callable[[], CredentialsGauge]):
        self.state = state

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        state = self.state()
        clients, problem, reloads = (family.at_scrape() for family in CREDENTIAL_FAMILIES)
        clients.add_metric([], float(state.clients))
        problem.add_metric([], 1.0 if state.problem else 0.0)
        for outcome, count in state.reloads.items():
            reloads.add_metric([outcome], float(count))
        yield from (clients, problem, reloads)


class _GuardCollector(Collector):
    def __init__(self, snapshot: Callable[[], GuardSnapshot], accounts: Iterable[str]):
        self.snapshot = snapshot
        self.accounts = list(accounts)

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        guard = self.snapshot()
        level, threshold, halted, deadline, timeout, failures, foreign = (
            family.at_scrape() for family in GUARD_FAMILIES
        )
        halts = {(h.account, h.client or "*") for h in guard.halts}
        for account in self.accounts:
            halted.add_metric([account, "*"], 1.0 if (account, "*") in halts else 0.0)
            foreign.add_metric([account], float(guard.foreign_writers.get(account, 0)))
            pairs = guard.trading.get(account, {})
            for pair, counter in sorted(pairs.items()):
                level.add_metric([account, pair], counter.level)
            if pairs:
                threshold.add_metric([account], next(iter(pairs.values())).threshold)
        for account, client in sorted(halts):
            if client != "*":
                halted.add_metric([account, client], 1.0)
        for account, state in sorted(guard.dead_man.items()):
            timeout.add_metric([account], state.timeout_s)
            failures.add_metric([account], float(state.failures))
            left = state.seconds_left(guard.taken_at)
            if left is not None:
                deadline.add_metric([account], left)
        yield from (level, threshold, halted, deadline, timeout, failures, foreign)

"""The gateway's Prometheus metrics, on a private registry, and its recent errors.

=====================================================  =========================================
``krakenwatch_gateway_requests_total``                 private calls by client, account, method,
                                                       outcome (``ok``, ``kraken_error``,
                                                       ``invalid_nonce``, ``rate_limited``,
                                                       ``rejected``, ``upstream_error``)
``krakenwatch_gateway_queue_wait_seconds``             time a call waited for its key (histogram)
``krakenwatch_gateway_upstream_duration_seconds``      time a call spent with Kraken (histogram)
``krakenwatch_gateway_rate_level``                     the modelled call counter per account
``krakenwatch_gateway_rate_limit``                     the most the model lets it reach
``krakenwatch_gateway_queue_depth``                    calls waiting per account
``krakenwatch_gateway_queue_refusals_total``           calls the gateway refused, never sent, by
                                                       reason: ``queue_full`` and ``busy``
                                                       (``EService:Busy``: the key stayed busy
                                                       past --max-queue-wait), ``wait`` (``EAPI:
                                                       Rate limit exceeded``: the rate budget)
``krakenwatch_gateway_kraken_errors_total``            Kraken's error answers by code
``krakenwatch_gateway_abandoned_total``                calls dropped because the client left
``krakenwatch_gateway_public_requests_total``          public calls by method and outcome
``krakenwatch_gateway_auth_failures_total``            wrong signatures by client credential
``krakenwatch_gateway_clients``                        client credentials in use
``krakenwatch_gateway_config_problem``                 1 while the client file on disk is refused
                                                       (the previous credentials stay in use)
``krakenwatch_gateway_config_reloads_total``           client file reloads by outcome
``krakenwatch_invalid_nonce_errors_total``             ``EAPI:Invalid nonce`` answers from Kraken
=====================================================  =========================================

DESIGN.md names the modelled counter ``krakenwatch_gateway_rate_counter``; Prometheus' naming
lint (``promtool check metrics``) refuses a gauge whose name ends in ``_counter``, so it is
``krakenwatch_gateway_rate_level``.

The families live on the gateway's own registry (:attr:`GatewayMetrics.registry`, what the
gateway's ``/metrics`` serves) and, when embedded, also on the host's (``registry=``: under ``up
--gateway`` the dashboard's ``/metrics`` shows them too, while the gateway's port shows none of the
dashboard's balances). The dashboard already counts ``krakenwatch_invalid_nonce_errors_total``:
pass its counter as ``invalid_nonces`` so one process exports one family.

The same calls feed :class:`~gateway.traffic.Traffic`, the recent picture a page draws.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .answers import Reply, code_label
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
    ):
        # no *_created series: they double the series count and Prometheus does not need them
        disable_created_metrics()
        #: the gateway's own families (its ``/metrics``)
        self.registry = CollectorRegistry(auto_describe=True)
        self._homes = [self.registry] if registry is None else [self.registry, registry]
        self.requests = self._add(
            Counter(
                "krakenwatch_gateway_requests",
                "Private calls through the gateway by client, account, method and outcome.",
                ["client", "account", "method", "outcome"],
                registry=None,
            )
        )
        self.queue_wait = self._add(
            Histogram(
                "krakenwatch_gateway_queue_wait_seconds",
                "Time a private call waited for its key (one in flight per key, rate model).",
                ["account"],
                buckets=(0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
                registry=None,
            )
        )
        self.upstream = self._add(
            Histogram(
                "krakenwatch_gateway_upstream_duration_seconds",
                "Time a private call spent with Kraken, from sending to the answer.",
                ["account", "method"],
                buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
                registry=None,
            )
        )
        self.kraken_errors = self._add(
            Counter(
                "krakenwatch_gateway_kraken_errors",
                "Error answers from Kraken to calls through the gateway, by code.",
                ["account", "code"],
                registry=None,
            )
        )
        self.abandoned = self._add(
            Counter(
                "krakenwatch_gateway_abandoned",
                "Queued private calls dropped because their client disconnected (never sent).",
                ["account"],
                registry=None,
            )
        )
        self.public = self._add(
            Counter(
                "krakenwatch_gateway_public_requests",
                "Public calls through the gateway by method and outcome (cached: answered from "
                "cache).",
                ["method", "outcome"],
                registry=None,
            )
        )
        self.auth_failures = self._add(
            Counter(
                "krakenwatch_gateway_auth_failures",
                "Requests with a gateway client's key and a wrong signature, by client.",
                ["client"],
                registry=None,
            )
        )
        if invalid_nonces is None:
            self.invalid_nonces = self._add(
                Counter(
                    "krakenwatch_invalid_nonce_errors",
                    "EAPI:Invalid nonce answers from Kraken.",
                    ["account"],
                    registry=None,
                )
            )
        else:  # the host's: already on its registry
            self.invalid_nonces = invalid_nonces
            self.registry.register(invalid_nonces)
        accounts = list(accounts)
        for account in accounts:
            self.invalid_nonces.labels(account)
            self.abandoned.labels(account)
            for code in WATCHED_CODES:
                self.kraken_errors.labels(account, code)
        self._add(_LaneCollector(lanes))
        if credentials is not None:
            self._add(_CredentialsCollector(credentials))
        #: the recent picture of the calls, for a page
        self.traffic = Traffic(accounts, WATCHED_CODES)

    def _add(self, collector: C) -> C:
        for registry in self._homes:
            registry.register(collector)
        return collector

    @property
    def recent_errors(self) -> tuple[ErrorRecord, ...]:
        """The last answers that were not ``ok``, oldest first."""
        return self.traffic.errors

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
        self.requests.labels(client, account, method, reply.outcome).inc()
        if queue_wait_s is not None:
            self.queue_wait.labels(account).observe(queue_wait_s)
        if upstream_s is not None:
            self.upstream.labels(account, method).observe(upstream_s)
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
        self.traffic.record(
            client,
            account,
            reply.outcome,
            kraken_codes=kraken_codes,
            queue_wait_s=queue_wait_s,
            error=error,
        )

    def authenticated(self, client: str, ok: bool) -> None:
        """A named client's signature was right (``ok``) or wrong."""
        if not ok:
            self.auth_failures.labels(client).inc()
        self.traffic.authenticated(client, ok)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _LaneCollector(Collector):
    def __init__(self, lanes: Callable[[], Iterable[LaneGauge]]):
        self.lanes = lanes

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        counter = GaugeMetricFamily(
            "krakenwatch_gateway_rate_level",
            "The gateway's model of the key's Kraken call counter (conservative).",
            labels=["account"],
        )
        limit = GaugeMetricFamily(
            "krakenwatch_gateway_rate_limit",
            "The highest value the gateway lets its modelled call counter reach.",
            labels=["account"],
        )
        depth = GaugeMetricFamily(
            "krakenwatch_gateway_queue_depth",
            "Private calls waiting for their key.",
            labels=["account"],
        )
        refusals = CounterMetricFamily(
            "krakenwatch_gateway_queue_refusals",
            "Calls the gateway refused itself, never sent, by reason: queue_full and busy "
            "(EService:Busy: the key stayed busy), wait (EAPI:Rate limit exceeded: the rate "
            "budget).",
            labels=["account", "reason"],
        )
        for lane in self.lanes():
            counter.add_metric([lane.account], lane.counter)
            limit.add_metric([lane.account], lane.limit)
            depth.add_metric([lane.account], float(lane.depth))
            for reason, count in lane.refused.items():
                refusals.add_metric([lane.account, reason], float(count))
        yield from (counter, limit, depth, refusals)


class _CredentialsCollector(Collector):
    def __init__(self, state: Callable[[], CredentialsGauge]):
        self.state = state

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        state = self.state()
        yield GaugeMetricFamily(
            "krakenwatch_gateway_clients",
            "Gateway client credentials in use.",
            value=state.clients,
        )
        yield GaugeMetricFamily(
            "krakenwatch_gateway_config_problem",
            "1 while the client file on disk is refused (malformed or open to others) and the "
            "previous credentials stay in use.",
            value=1.0 if state.problem else 0.0,
        )
        reloads = CounterMetricFamily(
            "krakenwatch_gateway_config_reloads",
            "Client file reloads by outcome.",
            labels=["outcome"],
        )
        for outcome, count in state.reloads.items():
            reloads.add_metric([outcome], float(count))
        yield reloads

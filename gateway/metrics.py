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
``krakenwatch_gateway_queue_refusals_total``           calls the gateway answered ``EAPI:Rate
                                                       limit exceeded`` by reason (``queue_full``,
                                                       ``wait``: longer than --max-queue-wait)
``krakenwatch_gateway_kraken_errors_total``            Kraken's error answers by code
``krakenwatch_gateway_abandoned_total``                calls dropped because the client left
``krakenwatch_gateway_public_requests_total``          public calls by method and outcome
``krakenwatch_invalid_nonce_errors_total``             ``EAPI:Invalid nonce`` answers from Kraken
=====================================================  =========================================

DESIGN.md names the modelled counter ``krakenwatch_gateway_rate_counter``; Prometheus' naming
lint (``promtool check metrics``) refuses a gauge whose name ends in ``_counter``, so it is
``krakenwatch_gateway_rate_level``.

Under ``up --gateway`` the dashboard already counts ``krakenwatch_invalid_nonce_errors_total``:
pass its counter as ``invalid_nonces`` so one process exports one family.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

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

__all__ = ["CONTENT_TYPE", "WATCHED_CODES", "ErrorRecord", "GatewayMetrics", "LaneGauge"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Kraken answers the gateway exists to prevent (or must count): exported from 0 per account
WATCHED_CODES = (
    "EAPI:Invalid nonce",
    "EAPI:Rate limit exceeded",
    "EGeneral:Temporary lockout",
    "EOrder:Rate limit exceeded",
)
RECENT_ERRORS = 100


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
class ErrorRecord:
    """One answer that was not ``ok`` (for the dashboard's "last errors"; never a body)."""

    at: float
    client: str
    account: str
    method: str
    outcome: str
    status: int
    code: str | None
    by_gateway: bool


class GatewayMetrics:
    """Counters fed as calls complete; gauges read from the lanes at scrape time."""

    def __init__(
        self,
        accounts: Iterable[str],
        lanes: Callable[[], Iterable[LaneGauge]],
        *,
        registry: CollectorRegistry | None = None,
        invalid_nonces: Counter | None = None,
    ):
        # no *_created series: they double the series count and Prometheus does not need them
        disable_created_metrics()
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "krakenwatch_gateway_requests",
            "Private calls through the gateway by client, account, method and outcome.",
            ["client", "account", "method", "outcome"],
            registry=r,
        )
        self.queue_wait = Histogram(
            "krakenwatch_gateway_queue_wait_seconds",
            "Time a private call waited for its key (one in flight per key, rate model).",
            ["account"],
            buckets=(0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=r,
        )
        self.upstream = Histogram(
            "krakenwatch_gateway_upstream_duration_seconds",
            "Time a private call spent with Kraken, from sending to the answer.",
            ["account", "method"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=r,
        )
        self.kraken_errors = Counter(
            "krakenwatch_gateway_kraken_errors",
            "Error answers from Kraken to calls through the gateway, by code.",
            ["account", "code"],
            registry=r,
        )
        self.abandoned = Counter(
            "krakenwatch_gateway_abandoned",
            "Queued private calls dropped because their client disconnected (never sent).",
            ["account"],
            registry=r,
        )
        self.public = Counter(
            "krakenwatch_gateway_public_requests",
            "Public calls through the gateway by method and outcome (cached: answered from cache).",
            ["method", "outcome"],
            registry=r,
        )
        self.invalid_nonces = invalid_nonces or Counter(
            "krakenwatch_invalid_nonce_errors",
            "EAPI:Invalid nonce answers from Kraken.",
            ["account"],
            registry=r,
        )
        for account in accounts:
            self.invalid_nonces.labels(account)
            self.abandoned.labels(account)
            for code in WATCHED_CODES:
                self.kraken_errors.labels(account, code)
        r.register(_LaneCollector(lanes))
        self.recent_errors: deque[ErrorRecord] = deque(maxlen=RECENT_ERRORS)

    def record(
        self,
        client: str,
        account: str,
        method: str,
        reply: Reply,
        *,
        queue_wait_s: float | None = None,
        upstream_s: float | None = None,
    ) -> None:
        """Count one answered private call (``method`` is already a label value)."""
        self.requests.labels(client, account, method, reply.outcome).inc()
        if queue_wait_s is not None:
            self.queue_wait.labels(account).observe(queue_wait_s)
        if upstream_s is not None:
            self.upstream.labels(account, method).observe(upstream_s)
        if not reply.by_gateway:
            for code in reply.codes:
                if not code.startswith("W"):
                    self.kraken_errors.labels(account, code_label(code)).inc()
            if reply.outcome == "invalid_nonce":
                self.invalid_nonces.labels(account).inc()
        if reply.outcome != "ok":
            self.recent_errors.append(
                ErrorRecord(
                    time.time(),
                    client,
                    account,
                    method,
                    reply.outcome,
                    reply.status,
                    code_label(reply.codes[0]) if reply.codes else None,
                    reply.by_gateway,
                )
            )

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
            "Calls the gateway answered EAPI:Rate limit exceeded itself (never sent), by reason.",
            labels=["account", "reason"],
        )
        for lane in self.lanes():
            counter.add_metric([lane.account], lane.counter)
            limit.add_metric([lane.account], lane.limit)
            depth.add_metric([lane.account], float(lane.depth))
            for reason, count in lane.refused.items():
                refusals.add_metric([lane.account, reason], float(count))
        yield from (counter, limit, depth, refusals)

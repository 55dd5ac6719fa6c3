"""The gateway's metric families, as one declarative table: name, type, help, labels, buckets.

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
``krakenwatch_gateway_trading_level``                  the modelled trading counter per pair
``krakenwatch_gateway_trading_threshold``              Kraken's threshold of that counter
``krakenwatch_gateway_halted``                         1 per halt in force (``client="*"``: the
                                                       whole account; 0 when not halted)
``krakenwatch_gateway_cancel_after_deadline_seconds``  seconds until Kraken would cancel the
                                                       account's open orders (dead man's switch)
``krakenwatch_gateway_cancel_after_timeout_seconds``   the switch's timeout (``CANCEL_AFTER``)
``krakenwatch_gateway_cancel_after_failures_total``    re-arms of the switch that failed
``krakenwatch_gateway_foreign_writer_total``           Kraken refused the gateway's own nonce:
                                                       another program signs with the key
=====================================================  =========================================

DESIGN.md names the modelled counter ``krakenwatch_gateway_rate_counter``; Prometheus' naming
lint (``promtool check metrics``) refuses a gauge whose name ends in ``_counter``, so it is
``krakenwatch_gateway_rate_level``; for the same reason DESIGN's
``krakenwatch_gateway_trading_counter`` is ``krakenwatch_gateway_trading_level``.

A :class:`Family` makes what feeds it: an instrument fed as calls complete
(:meth:`Family.counter`, :meth:`Family.histogram`), or a family filled at scrape time
(:meth:`Family.at_scrape`). A counter's name is given without the ``_total`` its samples carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from prometheus_client import Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

__all__ = [
    "ABANDONED_CALLS",
    "AUTH_FAILURES",
    "CALL_FAMILIES",
    "CLIENTS",
    "CONFIG_PROBLEM",
    "CONFIG_RELOADS",
    "CREDENTIAL_FAMILIES",
    "FAMILIES",
    "GUARD_FAMILIES",
    "INVALID_NONCES",
    "KRAKEN_ERRORS",
    "LANE_FAMILIES",
    "PUBLIC_REQUESTS",
    "QUEUE_DEPTH",
    "QUEUE_REFUSALS",
    "QUEUE_WAIT",
    "RATE_LEVEL",
    "RATE_LIMIT",
    "REQUESTS",
    "UPSTREAM_DURATION",
    "Family",
]

Kind = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True)
class Family:
    """One metric family, as Prometheus sees it."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    #: a histogram's upper bounds (``+Inf`` is added by the client library)
    buckets: tuple[float, ...] | None = None

    def counter(self) -> Counter:
        """The counter fed as calls complete (on no registry yet)."""
        self._expect("counter")
        return Counter(self.name, self.help, self.labels, registry=None)

    def histogram(self) -> Histogram:
        """The histogram fed as calls complete (on no registry yet)."""
        self._expect("histogram")
        assert self.buckets is not None
        return Histogram(self.name, self.help, self.labels, buckets=self.buckets, registry=None)

    def at_scrape(self) -> GaugeMetricFamily | CounterMetricFamily:
        """An empty family for a collector to fill at scrape time."""
        if self.kind == "gauge":
            return GaugeMetricFamily(self.name, self.help, labels=self.labels)
        self._expect("counter")
        return CounterMetricFamily(self.name, self.help, labels=self.labels)

    def _expect(self, kind: Kind) -> None:
        if self.kind != kind:
            raise TypeError(f"{self.name} is a {self.kind}, not a {kind}")


# -- fed as calls complete ------------------------------------------------------------------------

REQUESTS = Family(
    "krakenwatch_gateway_requests",
    "counter",
    "Private calls through the gateway by client, account, method and outcome.",
    ("client", "account", "method", "outcome"),
)
QUEUE_WAIT = Family(
    "krakenwatch_gateway_queue_wait_seconds",
    "histogram",
    "Time a private call waited for its key (one in flight per key, rate model).",
    ("account",),
    buckets=(0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
UPSTREAM_DURATION = Family(
    "krakenwatch_gateway_upstream_duration_seconds",
    "histogram",
    "Time a private call spent with Kraken, from sending to the answer.",
    ("account", "method"),
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
KRAKEN_ERRORS = Family(
    "krakenwatch_gateway_kraken_errors",
    "counter",
    "Error answers from Kraken to calls through the gateway, by code.",
    ("account", "code"),
)
ABANDONED_CALLS = Family(
    "krakenwatch_gateway_abandoned",
    "counter",
    "Queued private calls dropped because their client disconnected (never sent).",
    ("account",),
)
PUBLIC_REQUESTS = Family(
    "krakenwatch_gateway_public_requests",
    "counter",
    "Public calls through the gateway by method and outcome (cached: answered from cache).",
    ("method", "outcome"),
)
AUTH_FAILURES = Family(
    "krakenwatch_gateway_auth_failures",
    "counter",
    "Requests with a gateway client's key and a wrong signature, by client.",
    ("client",),
)
#: the dashboard exports the same family: embedded, the gateway counts into the host's
INVALID_NONCES = Family(
    "krakenwatch_invalid_nonce_errors",
    "counter",
    "EAPI:Invalid nonce answers from Kraken.",
    ("account",),
)

# -- read from the lanes at scrape time -----------------------------------------------------------

RATE_LEVEL = Family(
    "krakenwatch_gateway_rate_level",
    "gauge",
    "The gateway's model of the key's Kraken call counter (conservative).",
    ("account",),
)
RATE_LIMIT = Family(
    "krakenwatch_gateway_rate_limit",
    "gauge",
    "The highest value the gateway lets its modelled call counter reach.",
    ("account",),
)
QUEUE_DEPTH = Family(
    "krakenwatch_gateway_queue_depth",
    "gauge",
    "Private calls waiting for their key.",
    ("account",),
)
QUEUE_REFUSALS = Family(
    "krakenwatch_gateway_queue_refusals",
    "counter",
    "Calls the gateway refused itself, never sent, by reason: queue_full and busy "
    "(EService:Busy: the key stayed busy), wait (EAPI:Rate limit exceeded: the rate budget), "
    "order_budget (EOrder:Rate limit exceeded: a pair's trading counter), halted.",
    ("account", "reason"),
)

# -- read from the client credentials at scrape time ----------------------------------------------

CLIENTS = Family("krakenwatch_gateway_clients", "gauge", "Gateway client credentials in use.")
CONFIG_PROBLEM = Family(
    "krakenwatch_gateway_config_problem",
    "gauge",
    "1 while the client file on disk is refused (malformed or open to others) and the "
    "previous credentials stay in use.",
)
CONFIG_RELOADS = Family(
    "krakenwatch_gateway_config_reloads",
    "counter",
    "Client file reloads by outcome.",
    ("outcome",),
)

# -- read from the trading guard at scrape time ---------------------------------------------------

TRADING_LEVEL = Family(
    "krakenwatch_gateway_trading_level",
    "gauge",
    "The gateway's model of Kraken's per-pair trading counter (conservative).",
    ("account", "pair"),
)
TRADING_THRESHOLD = Family(
    "krakenwatch_gateway_trading_threshold",
    "gauge",
    "Kraken's threshold of the per-pair trading counter at the account's tier.",
    ("account",),
)
HALTED = Family(
    "krakenwatch_gateway_halted",
    "gauge",
    'The calls that open or change orders are halted (1; client="*": the whole account).',
    ("account", "client"),
)
CANCEL_AFTER_DEADLINE = Family(
    "krakenwatch_gateway_cancel_after_deadline_seconds",
    "gauge",
    "Seconds until Kraken cancels the account's open orders (the dead man's switch).",
    ("account",),
)
CANCEL_AFTER_TIMEOUT = Family(
    "krakenwatch_gateway_cancel_after_timeout_seconds",
    "gauge",
    "The dead man's switch timeout the gateway arms (KRAKEN_<ACCOUNT>_CANCEL_AFTER).",
    ("account",),
)
CANCEL_AFTER_FAILURES = Family(
    "krakenwatch_gateway_cancel_after_failures",
    "counter",
    "Re-arms of the dead man's switch that failed.",
    ("account",),
)
FOREIGN_WRITER = Family(
    "krakenwatch_gateway_foreign_writer",
    "counter",
    "Invalid nonces Kraken answered to nonces the gateway issued: another program signs with "
    "the key.",
    ("account",),
)

CALL_FAMILIES = (
    REQUESTS,
    QUEUE_WAIT,
    UPSTREAM_DURATION,
    KRAKEN_ERRORS,
    ABANDONED_CALLS,
    PUBLIC_REQUESTS,
    AUTH_FAILURES,
    INVALID_NONCES,
)
LANE_FAMILIES = (RATE_LEVEL, RATE_LIMIT, QUEUE_DEPTH, QUEUE_REFUSALS)
CREDENTIAL_FAMILIES = (CLIENTS, CONFIG_PROBLEM, CONFIG_RELOADS)
GUARD_FAMILIES = (
    TRADING_LEVEL,
    TRADING_THRESHOLD,
    HALTED,
    CANCEL_AFTER_DEADLINE,
    CANCEL_AFTER_TIMEOUT,
    CANCEL_AFTER_FAILURES,
    FOREIGN_WRITER,
)
#: every family, in the order ``/metrics`` lists them
FAMILIES = (*CALL_FAMILIES, *LANE_FAMILIES, *CREDENTIAL_FAMILIES, *GUARD_FAMILIES)

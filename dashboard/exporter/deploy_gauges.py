"""The latest deploy as Prometheus gauges (present once a deploy was marked).

* ``krakenwatch_deploy_info{version}``: 1, labelled with the latest deploy's version;
* ``krakenwatch_deploy_marked_timestamp_seconds``: when it was marked;
* ``krakenwatch_deploy_state{state}``: 1 for its state, 0 for the other two (pending, verified,
  failed), so that an alert can compare without ``absent()``;
* ``krakenwatch_deploy_seconds_to_verdict``: from the marker to the verdict (absent while
  pending);
* ``krakenwatch_deploy_timeout_seconds``: ``KRAKENWATCH_DEPLOY_TIMEOUT``, for the alert that
  catches a pending deploy past it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from dashboard.history.deploy_book import Deploy, DeployState

__all__ = ["DeployCollector"]


class DeployCollector(Collector):
    def __init__(self, latest: Callable[[], Deploy | None], timeout_s: float):
        self.latest = latest
        self.timeout_s = timeout_s

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield from _families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        deploy = self.latest()
        if deploy is None:
            return
        info, marked, state, verdict, timeout = _families()
        info.add_metric([deploy.version], 1.0)
        marked.add_metric([], deploy.marked_at)
        for name in DeployState:
            state.add_metric([str(name)], 1.0 if deploy.state == name else 0.0)
        seconds = deploy.seconds_to_verdict
        if seconds is not None:
            verdict.add_metric([], seconds)
        timeout.add_metric([], self.timeout_s)
        yield from (info, marked, state, verdict, timeout)


def _families() -> tuple[GaugeMetricFamily, ...]:
    return (
        GaugeMetricFamily(
            "krakenwatch_deploy_info",
            "1, labelled with the latest deploy's version.",
            labels=["version"],
        ),
        GaugeMetricFamily(
            "krakenwatch_deploy_marked_timestamp_seconds", "Unix time the latest deploy was marked."
        ),
        GaugeMetricFamily(
            "krakenwatch_deploy_state",
            "1 for the latest deploy's state (pending, verified, failed), 0 for the others.",
            labels=["state"],
        ),
        GaugeMetricFamily(
            "krakenwatch_deploy_seconds_to_verdict",
            "Seconds from the latest deploy's marker to its verdict (absent while pending).",
        ),
        GaugeMetricFamily(
            "krakenwatch_deploy_timeout_seconds",
            "How long a deploy has to be verified (KRAKENWATCH_DEPLOY_TIMEOUT).",
        ),
    )

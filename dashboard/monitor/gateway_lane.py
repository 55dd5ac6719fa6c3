"""The monitor's client under ``up --gateway``: its private calls take turns in the gateway's lanes.

The monitor's polling and the bots' calls then share one writer and one rate budget per key, so
the dashboard never spends budget the gateway does not know about.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from broker import KrakenClient

if TYPE_CHECKING:
    from broker.transport import Timeout
    from gateway import Gateway

__all__ = ["MONITOR_CLIENT", "MONITOR_MAX_WAIT_S", "LaneClient"]

#: the ``client`` label of the monitor's calls in the gateway's metrics
MONITOR_CLIENT = "monitor"
#: how long a monitor call may wait for its turn (longer than a bot's: a poll is not in a hurry,
#: and refusing it would show a healthy account as degraded)
MONITOR_MAX_WAIT_S = 60.0


class LaneClient(KrakenClient):
    """An account's client for the monitor under ``up --gateway``: every private call (``connect``
    and the permission probes included) is made in the gateway's lane of its key."""

    def __init__(self, *args: Any, gateway: Gateway, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.gateway = gateway

    def call_private(self, method: str, data: Any = None, timeout: Timeout | None = None) -> Any:
        own = super().call_private
        return self.gateway.take_turn(
            self.account,
            method,
            lambda: own(method, data, timeout),
            client=MONITOR_CLIENT,
            max_wait_s=MONITOR_MAX_WAIT_S,
        )

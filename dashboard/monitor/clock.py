"""The clock and Kraken's system status, sampled with public calls only (no key, no nonce).

Each sample estimates the local clock's skew against Kraken's ``Time`` (several probes, until the
uncertainty is small enough or the deadline passes) and reads ``SystemStatus``. The latest reading
of each is kept for the snapshot; new readings are published as events. ``krakenwatch up``'s
periodic sampler aims at a precise estimate; the one-shot check samples only until the estimate
decides its ``clock_skew`` bound, and reads ``SystemStatus`` alongside.
"""

from __future__ import annotations

import logging
import threading

from broker import KrakenError, PublicClient, SkewEstimate, estimate_clock_skew
from dashboard.monitor import events as ev
from dashboard.monitor.events import Publisher

__all__ = ["ClockSampler"]

log = logging.getLogger(__name__)
#: most probes of ``Time`` per skew sample
MAX_PROBES = 10


class ClockSampler:
    """Samples skew and system status; :meth:`run` is its thread."""

    def __init__(
        self,
        publish: Publisher,
        *,
        api_url: str | None,
        request_timeout_s: float,
        interval_s: float,
    ):
        self.publish = publish
        self.api_url = api_url
        self.request_timeout_s = request_timeout_s
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._skew: SkewEstimate | None = None
        self._system_status: str | None = None

    def reading(self) -> tuple[SkewEstimate | None, str | None]:
        """The latest skew estimate and system status (``None`` until first read)."""
        with self._lock:
            return self._skew, self._system_status

    def run(self, stop: threading.Event, deadline_s: float = 30.0) -> None:
        """Sample every ``interval_s`` until ``stop`` is set."""
        while not stop.is_set():
            try:
                self.sample(deadline_s)
            except Exception:  # keep sampling whatever one sample did
                log.exception("clock/status sample failed")
            stop.wait(self.interval_s)

    def sample(self, deadline_s: float, target_s: float = 0.01) -> None:
        """One skew estimate (within ``deadline_s``, aiming at ``target_s`` uncertainty), then one
        SystemStatus read, on one connection; a failed part is logged and leaves the previous
        reading."""
        public = self._public_client(deadline_s)
        if public is not None:
            with public:
                self._sample_skew(public, deadline_s, target_s, None)
                self._read_system_status(public)

    def sample_skew(
        self, deadline_s: float, target_s: float, *, decide_bound_s: float | None = None
    ) -> None:
        """One skew estimate alone; with ``decide_bound_s`` it stops as soon as the interval lies
        entirely inside or outside ``±decide_bound_s`` (enough for a verdict; the reading keeps
        the uncertainty it has)."""
        public = self._public_client(deadline_s)
        if public is not None:
            with public:
                self._sample_skew(public, deadline_s, target_s, decide_bound_s)

    def read_system_status(self, deadline_s: float) -> None:
        """One SystemStatus read alone (on its own connection)."""
        public = self._public_client(deadline_s)
        if public is not None:
            with public:
                self._read_system_status(public)

    def _public_client(self, deadline_s: float) -> PublicClient | None:
        """A client for public calls; ``None`` when ``KRAKEN_API_URL`` is invalid (nothing is
        sent anywhere then)."""
        if self.api_url is None:
            return None
        return PublicClient(base_url=self.api_url, timeout=min(self.request_timeout_s, deadline_s))

    def _sample_skew(
        self,
        public: PublicClient,
        deadline_s: float,
        target_s: float,
        decide_bound_s: float | None,
    ) -> None:
        try:
            skew = estimate_clock_skew(
                public,
                max_probes=MAX_PROBES,
                target_uncertainty_s=target_s,
                deadline_s=deadline_s,
                decide_bound_s=decide_bound_s,
            )
        except KrakenError as exc:
            log.warning("clock skew sample failed: %s", exc)
            return
        with self._lock:
            self._skew = skew
        self.publish(
            ev.SKEW,
            None,
            f"local - Kraken = {skew.offset_s:+.3f} s ± {skew.uncertainty_s:.3f}",
            {
                "offset_s": skew.offset_s,
                "uncertainty_s": skew.uncertainty_s,
                "probes": skew.probes,
                "rtt_s": skew.rtt_s,
            },
        )

    def _read_system_status(self, public: PublicClient) -> None:
        try:
            result = public.call_public("SystemStatus")
        except KrakenError as exc:
            log.warning("SystemStatus failed: %s", exc)
            return
        if not isinstance(result, dict):
            log.warning("SystemStatus answered %s, not an object", type(result).__name__)
            return
        # an object without a status says something is off at Kraken: shown, and judged, as such
        status = str(result.get("status", "unknown"))
        with self._lock:
            changed, self._system_status = self._system_status != status, status
        if changed:
            self.publish(
                ev.SYSTEM_STATUS, None, f"Kraken system status: {status}", {"status": status}
            )

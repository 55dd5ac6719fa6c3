"""The clock and Kraken's system status, sampled with public calls only (no key, no nonce).

Each sample estimates the local clock's skew against Kraken's ``Time`` (several probes, until the
uncertainty is small enough or the deadline passes) and reads ``SystemStatus``. The latest reading
of each is kept for the snapshot; new readings are published as events.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from broker import KrakenClient, KrakenError, SkewEstimate, estimate_clock_skew

from . import events as ev
from .events import Publisher

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
        api_url: str,
        store_dir: Path,
        nonce_store: str,
        request_timeout_s: float,
        interval_s: float,
    ):
        self.publish = publish
        self.api_url = api_url
        self.store_dir = store_dir
        self.nonce_store = nonce_store
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
        """One skew estimate (within ``deadline_s``, aiming at ``target_s`` uncertainty) and one
        SystemStatus read; a failed part is logged and leaves the previous reading."""
        public = KrakenClient(  # public calls only: the store settings are never used, but given
            store_dir=self.store_dir,
            nonce_store=self.nonce_store,
            durable=False,
            base_url=self.api_url,
            timeout=min(self.request_timeout_s, deadline_s),
        )
        try:
            skew = estimate_clock_skew(
                public, max_probes=MAX_PROBES, target_uncertainty_s=target_s, deadline_s=deadline_s
            )
        except KrakenError as exc:
            log.warning("clock skew sample failed: %s", exc)
        else:
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
        self._read_system_status(public)

    def _read_system_status(self, public: KrakenClient) -> None:
        try:
            result = public.call_public("SystemStatus")
        except KrakenError as exc:
            log.warning("SystemStatus failed: %s", exc)
            return
        if not isinstance(result, dict):
            log.warning("SystemStatus answered %s, not an object", type(result).__name__)
            return
        status = str(result.get("status", "unknown"))
        with self._lock:
            changed, self._system_status = self._system_status != status, status
        if changed:
            self.publish(
                ev.SYSTEM_STATUS, None, f"Kraken system status: {status}", {"status": status}
            )

"""A faithful re-implementation of the seed's nonce generator, kept to show its failure.

The seed (``kraken-invalid-nonce-complete-fix.md``) installs, on each ``krakenex.API`` object:
microsecond nonces ``int(time.time() * 1e6)``, a lock around *generation only*, an auto-increment
when the clock repeats, and a ``refresh`` that plainly assigns "now" (it can move backwards).
Because the lock does not cover the send, concurrent calls on one object can reach Kraken out of
order, and the lower nonce is rejected. Do not use this to talk to Kraken.
"""

from __future__ import annotations

import threading
import time
from typing import Any

__all__ = ["SeedNonceGenerator"]


class SeedNonceGenerator:
    def __init__(self) -> None:
        self._nonce_lock = threading.Lock()
        self._last_nonce = int(time.time() * 1000000)  # set in __init__, as the seed does

    @property
    def last_nonce(self) -> int:
        return self._last_nonce

    def __call__(self) -> str:
        """The seed's ``_nonce_monotonic``."""
        with self._nonce_lock:
            current_nonce = int(time.time() * 1000000)
            if current_nonce <= self._last_nonce:
                current_nonce = self._last_nonce + 1
            self._last_nonce = current_nonce
            return str(current_nonce)

    def refresh(self) -> None:
        """The seed's "complete fix": reset the baseline to now (a plain assignment)."""
        with self._nonce_lock:
            self._last_nonce = int(time.time() * 1000000)

    def install(self, api: Any, refresh: bool = True) -> SeedNonceGenerator:
        """Replace ``api._nonce`` (a ``krakenex.API``), then refresh, as the seed's connect()."""
        api._nonce = self
        if refresh:
            self.refresh()
        return self

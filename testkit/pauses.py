"""A monitor's pauses seen instead of lived through: the waits it asks for, recorded.

Hand :class:`ParkedPauses` to ``Service.create(pause=...)`` (or ``Monitor``): a wait shorter than
``park_from`` seconds passes on the real clock; a longer one (or "until asked", ``None``) is
recorded and parks the poller until it is woken (``retry_now``, ``stop``). A test then reads the
wait the monitor chose after a failure, and knows no call can happen meanwhile, without waiting
out a minute of backoff.
"""

from __future__ import annotations

import threading

__all__ = ["ParkedPauses"]


class ParkedPauses:
    def __init__(self, park_from: float = 1.5):
        self.park_from = park_from
        #: every parked wait, in the order asked (seconds, or ``None``: until asked)
        self.parked: list[float | None] = []
        self._changed = threading.Condition()

    def __call__(self, wake: threading.Event, seconds: float | None) -> None:
        if seconds is not None and seconds < self.park_from:
            wake.wait(seconds)
            return
        with self._changed:
            self.parked.append(seconds)
            self._changed.notify_all()
        wake.wait()

    def wait_parked(self, count: int = 1, timeout: float = 20.0) -> list[float | None]:
        """The parked waits once there are ``count`` of them; ``TimeoutError`` if they never come."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.parked) >= count, timeout):
                raise TimeoutError(f"{len(self.parked)} parked wait(s), expected {count}")
            return list(self.parked)

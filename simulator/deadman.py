"""Kraken's dead man's switch (``CancelAllOrdersAfter``): one countdown per key, and the daemon
thread that fires it on its own, without waiting for another request.

``timeout=S`` (whole seconds, ``0 <= S < 86400``: Kraken's "less than 86400 seconds") arms or
re-arms the key's switch for S seconds from now; ``timeout=0`` disarms it. At the trigger time,
on the simulator's clock (so ``set_clock_offset`` brings it nearer), every open order of the key
is cancelled as by ``CancelAll``: each cancel is published on the key's ``executions`` stream
with the reason ``Dead man's switch`` and counted on the pair's trading counter by the order's
age (never refused, like a batch cancel). Then the switch stays off until armed again. The
answer is ``{"currentTime": <RFC 3339>, "triggerTime": <RFC 3339> or "0"}``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .keys import KeyState
from .orders import rfc3339

__all__ = ["MAX_TIMEOUT_S", "REASON", "DeadMansSwitch"]

#: a timeout must be below this many seconds
MAX_TIMEOUT_S = 86_400
REASON = "Dead man's switch"
#: how often an armed switch looks at the simulator's clock (which a test may move)
_POLL_S = 0.05

#: cancels every open order of a key, with a reason
CancelAll = Callable[[KeyState, str], object]


class DeadMansSwitch:
    def __init__(self, cancel_all: CancelAll, clock: Callable[[], float]) -> None:
        self._cancel_all = cancel_all
        self._clock = clock
        self._changed = threading.Condition()
        self._triggers: dict[str, tuple[KeyState, float]] = {}
        self._fired: dict[str, int] = {}
        self._stopping = False
        self._thread: threading.Thread | None = None

    def arm(self, ks: KeyState, timeout_s: int) -> dict[str, Any]:
        """Arm (or, with 0, disarm) the key's switch; ``CancelAllOrdersAfter``'s result."""
        now = self._clock()
        with self._changed:
            if timeout_s:
                self._triggers[ks.key] = (ks, now + timeout_s)
            else:
                self._triggers.pop(ks.key, None)
            self._changed.notify_all()
        trigger = rfc3339(now + timeout_s) if timeout_s else "0"
        return {"currentTime": rfc3339(now), "triggerTime": trigger}

    def trigger_time(self, key: str) -> float | None:
        """When the key's switch fires (simulator clock, epoch seconds); ``None`` when off."""
        with self._changed:
            armed = self._triggers.get(key)
            return None if armed is None else armed[1]

    def fired(self, key: str) -> int:
        """How many times the key's switch has fired."""
        with self._changed:
            return self._fired.get(key, 0)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sim-dead-mans-switch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _due(self) -> list[KeyState]:
        now = self._clock()
        due = [ks for ks, at in self._triggers.values() if at <= now]
        for ks in due:
            del self._triggers[ks.key]
            self._fired[ks.key] = self._fired.get(ks.key, 0) + 1
        return due

    def _run(self) -> None:
        while True:
            with self._changed:
                if self._stopping:
                    return
                due = self._due()
                if not due:
                    self._changed.wait(_POLL_S if self._triggers else None)
                    continue
            for ks in due:  # outside this lock: the order book takes the state lock
                self._cancel_all(ks, REASON)

"""The dead man's switch of one account (``KRAKEN_<ACCOUNT>_CANCEL_AFTER=S``): kept armed while the
account's bots call, so Kraken cancels its open orders when they all go quiet, or when the gateway
itself dies.

A bot's call re-arms ``CancelAllOrdersAfter(timeout=S)`` when the last re-arm is older than
``S/4``: one extra private call per ``S/4`` seconds at most, queued after the bot's call (never on
its path). Kraken then cancels at most ``S`` seconds after the bots' last call, and no sooner than
``3S/4``; a bot must call at least every ``3S/4`` seconds to keep its orders.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from .guardview import DeadManState

__all__ = ["DEADMAN_CLIENT", "DeadMan", "trigger_time"]

#: the ``client`` label of the re-arms in the gateway's metrics
DEADMAN_CLIENT = "deadman"


def trigger_time(body: bytes) -> float | None:
    """Kraken's ``triggerTime`` of a ``CancelAllOrdersAfter`` answer as Unix time; ``None`` when
    the answer is an error, or the switch is off (``"0"``); ``ValueError`` when it cannot be
    read."""
    doc = json.loads(body)
    if doc.get("error"):
        return None
    text = str(doc["result"]["triggerTime"])
    if text == "0":
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class DeadMan:
    """One account's switch (see the module docstring). Thread-safe."""

    def __init__(
        self,
        account: str,
        timeout_s: int,
        rearm: Callable[[], None],
        *,
        clock: Callable[[], float] = time.time,
    ):
        self.account = account
        self.timeout_s = timeout_s
        #: queues one ``CancelAllOrdersAfter`` (the gateway's), whose answer comes to
        #: :meth:`armed` or :meth:`failed`
        self._rearm = rearm
        self._clock = clock
        self._lock = threading.Lock()
        self._state = DeadManState(account, float(timeout_s))
        self._pending = False
        #: the last re-arm asked for, and how many failed in a row (a failing re-arm is asked
        #: again after 1, 2, 4... seconds, at most every S/4: never once per bot call)
        self._asked_at: float | None = None
        self._failed_in_row = 0

    @property
    def state(self) -> DeadManState:
        with self._lock:
            return self._state

    def bot_called(self) -> None:
        """A bot called on the account: re-arm when the last re-arm is older than ``S/4``."""
        now = self._clock()
        quarter = self.timeout_s / 4
        with self._lock:
            self._state = replace(self._state, last_bot_call_at=now)
            armed_at, asked_at = self._state.armed_at, self._asked_at
            due = armed_at is None or now - armed_at >= quarter
            backoff = min(quarter, 2.0 ** (self._failed_in_row - 1)) if self._failed_in_row else 0
            if not due or self._pending or (asked_at is not None and now - asked_at < backoff):
                return
            self._pending, self._asked_at = True, now
        try:
            self._rearm()
        except Exception as exc:  # it could not even be queued: try again with a later call
            self.failed(f"could not queue the re-arm: {type(exc).__name__}")

    def armed(self, trigger_at: float | None) -> None:
        """Kraken confirmed a re-arm (its ``triggerTime``)."""
        with self._lock:
            self._pending, self._failed_in_row = False, 0
            self._state = replace(
                self._state, armed_at=self._clock(), trigger_at=trigger_at, last_error=None
            )

    def failed(self, error: str) -> None:
        """A re-arm failed (Kraken's error, or none came back): the next bot call tries again."""
        with self._lock:
            self._pending = False
            self._failed_in_row += 1
            self._state = replace(self._state, failures=self._state.failures + 1, last_error=error)

"""How long the monitor waits after a failed call, and when it stops calling.

Kraken counts failed calls (invalid key, signature or nonce) against the key and answers
``EGeneral:Temporary lockout`` for about 15 minutes after too many of them. So the monitor keeps
two schedules:

* authentication failures (``EAPI:Invalid key``, ``EAPI:Invalid signature``,
  ``EAPI:Invalid nonce``, ``EGeneral:Permission denied``) cannot heal by themselves: the next
  attempt comes minutes later, each wait longer than the last, and after a few attempts the
  monitor stops until it is restarted or asked to retry;
* everything else (timeouts, 5xx, Kraken busy) is passing trouble: a short, jittered exponential
  backoff capped at the poll interval; a rate limit waits until the call counter has half decayed,
  a lockout for the configured lockout wait.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from broker import (
    InvalidKeyError,
    InvalidNonceError,
    InvalidSignatureError,
    KrakenError,
    PermissionDeniedError,
    RateLimitError,
    TemporaryLockoutError,
)
from broker.limits import Tier

__all__ = ["AUTH_ERRORS", "RetryPolicy", "describe_wait", "is_auth_failure"]

#: the answers that say the key, its secret, its nonce or its permission is wrong
AUTH_ERRORS: tuple[type[KrakenError], ...] = (
    InvalidKeyError,
    InvalidSignatureError,
    InvalidNonceError,
    PermissionDeniedError,
)


def is_auth_failure(exc: KrakenError) -> bool:
    return isinstance(exc, AUTH_ERRORS)


@dataclass(frozen=True)
class RetryPolicy:
    #: the waits after the 1st, 2nd, ... consecutive authentication failure; the failure after
    #: the last one stops the account
    auth_delays_s: tuple[float, ...] = (60.0, 300.0, 900.0)

    @property
    def auth_attempts(self) -> int:
        """How many authentication failures in a row stop the account."""
        return len(self.auth_delays_s) + 1

    def auth_delay(self, failures: int) -> float | None:
        """The wait after ``failures`` consecutive authentication failures; ``None``: stop."""
        if 1 <= failures <= len(self.auth_delays_s):
            return self.auth_delays_s[failures - 1]
        return None

    def transient_delay(
        self, exc: KrakenError, failures: int, *, poll_s: float, lockout_wait_s: float, tier: Tier
    ) -> float:
        """The wait after the ``failures``-th consecutive failure of a passing kind."""
        if isinstance(exc, TemporaryLockoutError):
            return lockout_wait_s
        if isinstance(exc, RateLimitError):
            return max(poll_s, tier.seconds_to_decay(tier.maximum / 2))  # counter half decayed
        base = min(poll_s, 2.0 ** (failures - 1))
        return max(0.5, base * random.uniform(0.5, 1.0))


def describe_wait(seconds: float) -> str:
    """``60`` -> ``"1 min"``, ``90`` -> ``"1.5 min"``, ``0.5`` -> ``"0.5 s"``."""
    if seconds >= 60:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"

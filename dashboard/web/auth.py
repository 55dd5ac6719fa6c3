"""Optional protection of the dashboard and its HTTP routes with one shared password.

``KRAKENWATCH_PASSWORD`` guards the pages (a login form per browser session) and ``/metrics`` /
``/api/verify`` (HTTP Basic, any user name: Prometheus ``basic_auth``). Comparison is in constant
time. ``/_stcore/health`` stays open for liveness probes.

Guessing is slowed down per client address (:class:`PasswordThrottle`, one for the form and the
routes): after :data:`FREE_FAILURES` failures in a row, each further attempt from that address is
refused unchecked for 1 s, 2 s, 4 s ... (at most 60 s) after its last failure; a success resets it.
Refused, never slept on: the server's threads are not held.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "FREE_FAILURES",
    "MAX_DELAY_S",
    "Attempt",
    "PasswordThrottle",
    "basic_auth_ok",
    "basic_password",
    "client_key",
    "password_ok",
]

#: failures in a row from one address before its attempts are slowed down
FREE_FAILURES = 5
#: the first wait after those failures; it doubles with each further failure, up to MAX_DELAY_S
FIRST_DELAY_S = 1.0
MAX_DELAY_S = 60.0
#: an address with no failure for this long is forgotten
FORGET_AFTER_S = 3600.0
#: at most this many addresses are remembered (the longest idle is forgotten first)
MAX_ADDRESSES = 10_000
#: the key of connections without an address, and of loopback ones (Streamlit gives them none)
LOCAL = "local"
_log = logging.getLogger(__name__)


def password_ok(given: str, expected: str) -> bool:
    """Constant-time comparison (of digests, so lengths leak nothing either)."""
    a = hashlib.sha256(given.encode("utf-8")).digest()
    b = hashlib.sha256(expected.encode("utf-8")).digest()
    return hmac.compare_digest(a, b)


def basic_password(header: str | None) -> str | None:
    """The password of an ``Authorization: Basic …`` header (user name ignored); ``None`` when
    there is no such header or it cannot be decoded."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2]


def basic_auth_ok(header: str | None, expected: str) -> bool:
    """Check an ``Authorization: Basic …`` header against the password (user name ignored)."""
    given = basic_password(header)
    return given is not None and password_ok(given, expected)


def client_key(address: str | None) -> str:
    """Whom failures are counted for: the address; an IPv6 client by its /64 (a host usually
    holds all of it); loopback and unknown addresses as one, :data:`LOCAL`."""
    if not address:
        return LOCAL
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return LOCAL
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(frozen=True)
class Attempt:
    """The outcome of one password attempt."""

    ok: bool
    #: refused without checking the password: too many failures from this address
    throttled: bool = False
    #: seconds until this address's next attempt is checked (0: at once)
    retry_after_s: float = 0.0

    @property
    def retry_after(self) -> int:
        """:attr:`retry_after_s` in whole seconds, rounded up (for messages and ``Retry-After``)."""
        return math.ceil(self.retry_after_s)


@dataclass
class _Failures:
    count: int
    last: float


class PasswordThrottle:
    """Failed password attempts per client address, and the wait they impose (thread-safe).

    ``clock``: seconds, monotonic (injected by tests). Memory is bounded: an address is forgotten
    ``forget_after_s`` after its last failure, and at most ``max_addresses`` are remembered.
    """

    def __init__(
        self,
        *,
        free_failures: int = FREE_FAILURES,
        first_delay_s: float = FIRST_DELAY_S,
        max_delay_s: float = MAX_DELAY_S,
        forget_after_s: float = FORGET_AFTER_S,
        max_addresses: int = MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free_failures = free_failures
        self.first_delay_s = first_delay_s
        self.max_delay_s = max_delay_s
        self.forget_after_s = forget_after_s
        self.max_addresses = max_addresses
        self._clock = clock
        self._lock = threading.Lock()
        #: by key, the least recently failed first
        self._failures: OrderedDict[str, _Failures] = OrderedDict()

    def attempt(self, address: str | None, check: Callable[[], bool]) -> Attempt:
        """Run ``check`` (the password comparison: quick, it runs under the lock, so concurrent
        attempts cannot slip in together) unless ``address`` must wait; record the outcome."""
        key = client_key(address)
        with self._lock:
            now = self._clock()
            self._forget(now)
            wait = self._wait(self._failures.get(key), now)
            if wait > 0:
                return Attempt(ok=False, throttled=True, retry_after_s=wait)
            if check():
                self._failures.pop(key, None)
                return Attempt(ok=True)
            failures = self._failures.pop(key, None) or _Failures(0, now)
            failures.count += 1
            failures.last = now
            self._failures[key] = failures
            if len(self._failures) > self.max_addresses:
                self._failures.popitem(last=False)
            if failures.count == self.free_failures:
                _log.warning(
                    "%d failed password attempts in a row from %s: its attempts are slowed down",
                    failures.count,
                    key,
                )
            return Attempt(ok=False, retry_after_s=self._wait(failures, now))

    def retry_after(self, address: str | None) -> float:
        """Seconds until an attempt from ``address`` is checked (0: at once)."""
        key = client_key(address)
        with self._lock:
            return self._wait(self._failures.get(key), self._clock())

    def __len__(self) -> int:
        """How many addresses are remembered."""
        with self._lock:
            return len(self._failures)

    def _wait(self, failures: _Failures | None, now: float) -> float:
        if failures is None or failures.count < self.free_failures:
            return 0.0
        doublings = min(failures.count - self.free_failures, 32)
        delay = min(self.first_delay_s * 2.0**doublings, self.max_delay_s)
        return max(0.0, failures.last + delay - now)

    def _forget(self, now: float) -> None:
        while self._failures:
            oldest = next(iter(self._failures.values()))
            if now - oldest.last < self.forget_after_s:
                break
            self._failures.popitem(last=False)

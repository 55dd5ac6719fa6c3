"""One account's connection, step by step: connect, poll the balance, probe permissions, back off.

A step is one attempt. Not connected yet (or after an invalid nonce): refresh the nonce baseline
and make the first private call (``Balance``), which the client retries once on an invalid nonce.
Connected: poll ``Balance``. Every few successful polls, probe the permissions. A failure sets the
state and the wait before the next step (:mod:`dashboard.monitor.retry`); after too many authentication
failures in a row the account stops until :meth:`AccountPoller.retry_now` or a restart.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from broker import (
    AccountConfig,
    ConfigurationError,
    KrakenAPIError,
    KrakenClient,
    KrakenError,
    PermissionDeniedError,
    TemporaryLockoutError,
)
from broker.balances import parse_balances
from broker.limits import TIERS
from dashboard.config import Settings, min_poll_interval
from dashboard.monitor import events as ev
from dashboard.monitor.board import AccountBoard
from dashboard.monitor.events import Publisher
from dashboard.monitor.probes import probe_permissions
from dashboard.monitor.reconcile import balance_differences
from dashboard.monitor.retry import RetryPolicy, describe_wait, is_auth_failure
from dashboard.monitor.status import AccountState
from dashboard.monitor.streaming import StreamFeed
from dashboard.monitor.streamstatus import StreamState, StreamStatus

__all__ = ["AccountPoller"]

log = logging.getLogger(__name__)
#: re-probe OpenOrders (and AddOrder validate) every this many successful polls
PROBE_EVERY = 5
#: consecutive failures after which a degraded account counts as disconnected
DISCONNECT_AFTER = 3
#: a balance event is recorded when the balances change, and at least this often
BALANCE_EVENT_EVERY_S = 600.0
#: the wait after a configuration error (nothing can change it but a restart)
CONFIGURATION_WAIT_S = 3600.0


#: how a poller waits between steps: until ``wake`` is set or the seconds have passed (``None``:
#: until woken). Tests pass their own to see the waits asked for without living through them.
Pause = Callable[[threading.Event, float | None], object]


def wait_for_wake(wake: threading.Event, seconds: float | None) -> None:
    """The real pause: the wall clock's seconds, cut short by :meth:`AccountPoller.wake`."""
    wake.wait(seconds)


class AccountPoller:
    """Connects and polls one account; :meth:`run` is its thread."""

    def __init__(
        self,
        account: AccountConfig,
        client: KrakenClient,
        board: AccountBoard,
        publish: Publisher,
        settings: Settings,
        policy: RetryPolicy,
        pause: Pause = wait_for_wake,
    ):
        self.label = account.label
        self.pause = pause
        self.client = client
        self.board = board
        self.publish = publish
        self.settings = settings
        self.policy = policy
        self.tier = TIERS[account.tier or settings.tier]
        self.connected = False
        self.polls = 0
        self.failures = 0
        self.auth_failures = 0
        self.stopped = False
        self._last_balances: dict[str, str] | None = None
        self._last_balance_event = 0.0
        self._wake = threading.Event()
        self._retry_requested = False
        #: True while the thread waits out an ordinary poll interval after a success (not a
        #: backoff, a lockout wait or a stop): only then may :meth:`poll_soon` cut it short
        self._polling_wait = False
        self._last_step_at = -math.inf
        #: the account's stream, once the monitor opened one: while it is up, REST ``Balance``
        #: only reconciles (every ``reconcile_interval_s``)
        self.feed: StreamFeed | None = None
        #: called once, after the first successful connection (the monitor opens the stream)
        self.on_connected: Callable[[], object] | None = None
        self._last_rest_at = -math.inf
        #: the next step calls REST even while the stream is up (a deploy wants a call after it)
        self._rest_now = False
        #: the last reconciliation found a difference: the next one (soon) confirms it or not
        self._suspect = False

    # -- the thread ---------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Step until ``stop`` is set (call :meth:`wake` after setting it)."""
        while not stop.is_set():
            self._wake.clear()
            try:
                wait = self.step()
            except Exception as exc:  # a bug must not silently end this account's monitoring
                log.exception("monitor step for %s failed", self.label)
                self.board.set_state(
                    self.label, AccountState.DISCONNECTED, f"internal error: {type(exc).__name__}"
                )
                wait = self.settings.poll_interval_s
            if not stop.is_set():
                self._polling_wait = self.connected and wait == self.settings.poll_interval_s
                self.pause(self._wake, wait)
                self._polling_wait = False

    def wake(self) -> None:
        """End the current wait now."""
        self._wake.set()

    def poll_soon(self) -> None:
        """Poll now (a deploy was marked) if the thread is waiting out an ordinary poll interval
        and its last attempt is at least the tier's shortest safe interval ago; never cuts short
        a backoff or a lockout wait."""
        self._rest_now = True
        floor = min_poll_interval(self.tier.name)
        if self._polling_wait and time.monotonic() - self._last_step_at >= floor:
            self._wake.set()

    def retry_now(self) -> None:
        """Forget the authentication failures (a stopped account resumes) and attempt now."""
        self._retry_requested = self._rest_now = True
        self._wake.set()

    # -- one attempt --------------------------------------------------------------------------

    def step(self, again: bool = True) -> float | None:
        """One connect-or-poll attempt; how long to wait before the next (``None``: until asked).

        ``again=False``: a one-shot attempt (``krakenwatch check``); its state says nothing of a
        next attempt.
        """
        if self._retry_requested:
            self._retry_requested = False
            self.auth_failures, self.stopped = 0, False
            self.board.record_auth_failures(self.label, 0, stopped=False)
        if self.stopped:
            return None
        if self.connected and not self._rest_due():
            return self._stream_wait()  # the stream carries the balances
        self._rest_now = False
        self._last_step_at = time.monotonic()
        stream_balances, version = self._stream_reading()
        try:
            if self.connected:
                result = self.client.call_private("Balance")
            else:
                self.board.set_state(
                    self.label,
                    AccountState.CONNECTING,
                    "connecting: refresh nonce baseline, first call Balance",
                )
                result = self.client.connect("Balance")
            balances = parse_balances(result, account=self.label)
        except ConfigurationError as exc:
            self.connected = False
            self.board.record_failure(self.label, exc)
            self.board.set_state(self.label, AccountState.INVALID_CONFIG, str(exc))
            return max(self.settings.poll_interval_s, CONFIGURATION_WAIT_S)
        except KrakenError as exc:
            return self._after_failure(exc, again)
        self.connected = True
        self._last_rest_at = self.publish.clock()
        keep = False  # the stream's balances stay (REST's answer is not shown)
        if stream_balances is not None:
            moved = self.feed is not None and version != self.feed.balance_version
            # newer from the stream while the call was out, or a difference to look at again
            keep = moved or self._reconcile(stream_balances, balances)
        self._after_success(balances, keep_balances=keep)
        if self.on_connected is not None:
            opened, self.on_connected = self.on_connected, None
            opened()
        return self.settings.poll_interval_s

    # -- the stream ---------------------------------------------------------------------------

    def _rest_due(self) -> bool:
        """Whether this step calls REST ``Balance``: always without a stream; while it is up,
        every ``reconcile_interval_s``; while it reconnects, once it has been down a poll
        interval (then polling as before until it is up again)."""
        if self.feed is None or self._rest_now:
            return True
        stream = self.board.stream(self.label)
        now = self.publish.clock()
        if stream.state == StreamState.UP:
            return now - self._last_rest_at >= self.settings.reconcile_interval_s
        down = stream.down_since
        return down is None or now - down >= self.settings.poll_interval_s

    def _stream_wait(self) -> float:
        """While the stream is up, the next look in a poll interval; while it reconnects, when it
        will have been down a poll interval (REST resumes then)."""
        stream = self.board.stream(self.label)
        if stream.up or stream.down_since is None:
            return self.settings.poll_interval_s
        down_for = self.publish.clock() - stream.down_since
        return max(0.05, self.settings.poll_interval_s - down_for)

    def _stream_reading(self) -> tuple[dict[str, str] | None, int]:
        """The stream's balances and their version before a REST call (``None``: no stream up).
        The version is read first: balances written after it make the call's comparison void."""
        feed = self.feed
        if feed is None or not feed.balances_synced:
            return None, 0
        version = feed.balance_version
        if self.board.stream(self.label).state != StreamState.UP:
            return None, 0
        return self.board.balances(self.label), version

    def _reconcile(self, stream: dict[str, str], rest: dict[str, str]) -> bool:
        """REST ``Balance`` against the stream's balances (none changed while it was asked). A
        difference is reported when the next reconciliation, a poll interval later, finds one
        too: the stream may tell a ledger entry a moment after REST shows it. True while a
        difference waits for that (the stream's balances stay shown meanwhile); a confirmed one
        is corrected to REST's."""
        now = self.publish.clock()
        differences = balance_differences(stream, rest)
        confirmed = bool(differences) and self._suspect
        self._suspect = bool(differences) and not confirmed
        self._rest_now = self._rest_now or self._suspect  # look again a poll interval later

        def change(s: StreamStatus) -> None:
            s.last_reconciled_at = now
            s.balance_mismatches += bool(confirmed)

        self.board.change_stream(self.label, change)
        if confirmed:
            assets = ", ".join(differences)
            self.publish(
                ev.BALANCE_MISMATCH,
                self.label,
                f"REST Balance differs from the stream's: {assets}",
                {"assets": differences},
            )
        return self._suspect

    def _after_success(self, balances: dict[str, str], *, keep_balances: bool = False) -> None:
        self.failures = self.auth_failures = 0
        nonce = self.client.nonce_status()  # file lock + read: not under the board's lock
        self.board.record_success(self.label, None if keep_balances else balances, nonce)
        self.board.set_permission(self.label, "funds", True, None)
        self.board.set_state(
            self.label, AccountState.CONNECTED, "Balance succeeded (KRAKEN PRO CONNECTED)"
        )
        now = self.publish.clock()
        if not keep_balances and (
            balances != self._last_balances
            or now - self._last_balance_event > BALANCE_EVENT_EVERY_S
        ):
            self._last_balances, self._last_balance_event = balances, now
            self.publish(ev.BALANCE, self.label, f"{len(balances)} assets", {"balances": balances})
        # while the stream is up its two subscriptions prove Query Funds and Query Open Orders:
        # no probe calls (the first ones ran before the stream opened)
        streaming = self.feed is not None and self.board.stream(self.label).up
        if self.polls % PROBE_EVERY == 0 and not streaming:
            self._probe_permissions()
        self.polls += 1

    def _after_failure(self, exc: KrakenError, again: bool) -> float | None:
        self.failures += 1
        self.board.record_failure(self.label, exc)
        if is_auth_failure(exc):
            return self._after_auth_failure(exc, again)
        was_up = self.board.state(self.label) == AccountState.CONNECTED
        # a lockout is waited out in full, then the account connects afresh
        transient = exc.retryable and not isinstance(exc, TemporaryLockoutError)
        if was_up and transient and self.failures < DISCONNECT_AFTER:
            self.board.set_state(self.label, AccountState.DEGRADED, f"{exc.kind}: {exc}")
        else:
            self.connected = self.connected and transient
            self.board.set_state(self.label, AccountState.DISCONNECTED, f"{exc.kind}: {exc}")
        return self.policy.transient_delay(
            exc,
            self.failures,
            poll_s=self.settings.poll_interval_s,
            lockout_wait_s=self.settings.lockout_wait_s,
            tier=self.tier,
        )

    def _after_auth_failure(self, exc: KrakenError, again: bool) -> float | None:
        """Wrong key, secret, nonce or permission: no quick retry (failed calls earn a lockout)."""
        self.connected = False  # the next attempt refreshes the nonce baseline
        self.auth_failures += 1
        code = exc.code if isinstance(exc, KrakenAPIError) else exc.kind
        if isinstance(exc, PermissionDeniedError):
            self.board.set_permission(self.label, "funds", False, code)
            if self.auth_failures == 1:
                self._probe_permissions()
        delay = self.policy.auth_delay(self.auth_failures)
        self.stopped = delay is None
        self.board.record_auth_failures(self.label, self.auth_failures, stopped=self.stopped)
        if not again:
            reason = f"{exc.kind}: {exc}"
        elif delay is None:
            reason = (
                f"stopped after {self.auth_failures} authentication failures: {code}; "
                "fix it and restart, or press Retry now"
            )
        else:
            reason = (
                f"{exc.kind}: {exc}; next attempt in {describe_wait(delay)} "
                f"(attempt {self.auth_failures} of {self.policy.auth_attempts})"
            )
        self.board.set_state(self.label, AccountState.DISCONNECTED, reason)
        return delay

    def _probe_permissions(self) -> None:
        for result in probe_permissions(self.client, trade=self.settings.probe_trade):
            self.board.set_permission(self.label, result.permission, result.granted, result.code)

"""The monitor: connects every account (the seed's flow, fixed), polls, reconnects, samples skew.

One daemon thread per account (different keys never wait for each other) and one for the clock
and Kraken's system status. Everything that happens becomes an :class:`~dashboard.events.Event`
handed to the listeners (the store, the metrics); :meth:`Monitor.snapshot` is the current picture.
"""

from __future__ import annotations

import copy
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from broker import (
    CallEvent,
    ConfigurationError,
    FanOut,
    InvalidNonceError,
    KrakenClient,
    KrakenError,
    Observer,
    PermissionDeniedError,
    RateLimitError,
    RefreshEvent,
    SkewEstimate,
    TemporaryLockoutError,
    estimate_clock_skew,
)
from broker.balances import parse_balances
from broker.limits import TIERS
from broker.paths import nonce_store_dir

from . import events as ev
from .config import Settings
from .status import AccountStatus, ErrorInfo, Snapshot

__all__ = ["Monitor"]

log = logging.getLogger(__name__)
Listener = Callable[[ev.Event], object]
#: re-probe OpenOrders (and AddOrder validate) every this many successful polls
PROBE_EVERY = 5
#: consecutive failures after which a degraded account counts as disconnected
DISCONNECT_AFTER = 3
BALANCE_EVENT_EVERY_S = 600.0


@dataclass
class _Worker:
    client: KrakenClient
    connected: bool = False
    polls: int = 0
    failures: int = 0
    last_balance_event: float = 0.0
    last_balances: dict[str, str] | None = field(default=None)


class Monitor:
    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time):
        self.settings = settings
        self.clock = clock
        self.started_at: float | None = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._listeners: list[Listener] = []
        self._observers: list[Observer] = []
        self._threads: list[threading.Thread] = []
        self._workers: dict[str, _Worker] = {}
        shared = settings.discovery.shared_keys
        now = clock()
        self._accounts = {
            a.label: AccountStatus(
                label=a.label,
                masked_key=a.masked_key,
                key_id=a.key_id,
                nonce_unit=a.nonce_unit,
                state=ev.CONNECTING,
                since=now,
                shared_with=[x for x in shared.get(a.key_id, []) if x != a.label],
            )
            for a in settings.accounts
        }
        for problem in settings.discovery.errors:
            if problem.account and problem.account not in self._accounts:
                self._accounts[problem.account] = AccountStatus(
                    label=problem.account,
                    masked_key="",
                    key_id="",
                    nonce_unit="-",
                    state=ev.INVALID_CONFIG,
                    since=now,
                    reason=str(problem),
                    configured=False,
                )
        self._skew: SkewEstimate | None = None
        self._system_status: str | None = None
        self._log_matches: dict[str, int] = {}
        #: set by whoever attaches a bot-log watcher to :meth:`emit`
        self.log_watching = False

    # -- wiring -------------------------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def add_observer(self, observer: Observer) -> None:
        """A broker observer told about every call and refresh of every account's client."""
        self._observers.append(observer)

    def emit(self, event: ev.Event) -> None:
        if event.kind == ev.LOG_MATCH:
            with self._lock:
                name = str(event.data.get("pattern"))
                self._log_matches[name] = self._log_matches.get(name, 0) + 1
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("event listener failed; event kept going")

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start polling every account, and the clock/status sampler, in daemon threads."""
        self._begin()
        for label in self._workers:
            self._spawn(f"kw-account-{label}", self._run_account, label)
        self._spawn("kw-clock", self._run_clock)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the threads; waits at most ``timeout`` in all (a request in flight may be
        abandoned: the threads are daemons and its answer is not needed)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def verify_once(self, timeout_s: float) -> Snapshot:
        """Connect every account once, probe permissions, sample the clock; at most ``timeout_s``.

        Accounts still waiting for Kraken at the deadline stay ``connecting`` (checks pending).
        """
        self._begin(request_timeout=max(0.5, min(self.settings.request_timeout_s, timeout_s * 0.8)))
        deadline = time.monotonic() + timeout_s
        threads = [self._spawn(f"kw-verify-{label}", self._step, label) for label in self._workers]
        threads.append(
            self._spawn("kw-verify-clock", self._sample_clock, min(timeout_s * 0.6, 4.0), 0.05)
        )
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return self.snapshot()

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(
                started_at=self.started_at,
                taken_at=self.clock(),
                accounts=[copy.deepcopy(a) for a in self._accounts.values()],
                skew=self._skew,
                system_status=self._system_status,
                log_matches=dict(self._log_matches),
                log_watching=self.log_watching,
            )

    def _begin(self, request_timeout: float | None = None) -> None:
        self.started_at = self.clock()
        for status in self._accounts.values():
            if not status.configured:
                self.emit(
                    ev.Event(
                        ev.STATE,
                        status.label,
                        f"invalid configuration: {status.reason}",
                        {"state": ev.INVALID_CONFIG, "previous": None, "reason": status.reason},
                    )
                )
        store_dir = nonce_store_dir(self.settings.data_dir)
        observer = FanOut(self._observers)
        for account in self.settings.accounts:
            client = KrakenClient(
                account.key,
                account.secret,
                account=account.label,
                nonce_unit=account.nonce_unit,
                store_dir=store_dir,
                base_url=self.settings.api_url,
                timeout=request_timeout or self.settings.request_timeout_s,
                observer=FanOut([observer, _EventBridge(self)]),
            )
            self._workers[account.label] = _Worker(client)
            self.emit(
                ev.Event(
                    ev.STATE,
                    account.label,
                    "monitor started; connecting",
                    {"state": ev.CONNECTING, "previous": None, "reason": "start"},
                )
            )

    def _spawn(self, name: str, target: Callable[..., Any], *args: Any) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)
        return thread

    # -- accounts -----------------------------------------------------------------------------------

    def _run_account(self, label: str) -> None:
        while not self._stop.is_set():
            try:
                wait = self._step(label)
            except Exception as exc:  # a bug must not silently end this account's monitoring
                log.exception("monitor step for %s failed", label)
                self._set_state(label, ev.DISCONNECTED, f"internal error: {type(exc).__name__}")
                wait = self.settings.poll_interval_s
            self._stop.wait(wait)

    def _step(self, label: str) -> float:
        """One connect-or-poll step for ``label``; returns how long to wait before the next one."""
        worker = self._workers[label]
        client = worker.client
        try:
            if worker.connected:
                result = client.call_private("Balance")
            else:
                self._set_state(
                    label, ev.CONNECTING, "connecting: refresh nonce baseline, first call Balance"
                )
                result = client.connect("Balance")
            balances = parse_balances(result, account=label)
            worker.connected = True
            self._record_success(label, worker, balances)
            if worker.polls % PROBE_EVERY == 0:
                self._probe_permissions(label, client)
            worker.polls += 1
            return self.settings.poll_interval_s
        except ConfigurationError as exc:
            worker.connected = False
            self._record_failure(label, exc)
            self._set_state(label, ev.INVALID_CONFIG, str(exc))
            return max(self.settings.poll_interval_s, 3600.0)
        except KrakenError as exc:
            return self._after_failure(label, worker, exc)

    def _after_failure(self, label: str, worker: _Worker, exc: KrakenError) -> float:
        worker.failures += 1
        self._record_failure(label, exc)
        if isinstance(exc, PermissionDeniedError):
            self._set_permission(label, "funds", False, exc.code)
            self._probe_permissions(label, worker.client)
        if isinstance(exc, InvalidNonceError):
            worker.connected = False  # reconnect (refresh + retry once) next time, after backoff
        with self._lock:
            was_up = self._accounts[label].state == ev.CONNECTED
        transient = exc.retryable and not isinstance(exc, TemporaryLockoutError)
        if was_up and transient and worker.failures < DISCONNECT_AFTER:
            self._set_state(label, ev.DEGRADED, f"{exc.kind}: {exc}")
        else:
            worker.connected = worker.connected and transient
            self._set_state(label, ev.DISCONNECTED, f"{exc.kind}: {exc}")
        return self._backoff(worker.failures, exc)

    def _backoff(self, failures: int, exc: KrakenError) -> float:
        poll = self.settings.poll_interval_s
        if isinstance(exc, TemporaryLockoutError):
            return self.settings.lockout_wait_s
        if isinstance(exc, RateLimitError):
            tier = TIERS[self.settings.tier]
            return max(poll, tier.seconds_to_decay(tier.maximum / 2))  # counter half decayed
        base = min(poll, 2.0 ** (failures - 1))
        return max(0.5, base * random.uniform(0.5, 1.0))

    def _probe_permissions(self, label: str, client: KrakenClient) -> None:
        probes: list[tuple[str, str, dict[str, str]]] = [("orders", "OpenOrders", {})]
        if self.settings.probe_trade:
            probes.append(
                (
                    "trade",
                    "AddOrder",
                    {
                        "pair": "XBTUSD",
                        "type": "buy",
                        "ordertype": "limit",
                        "price": "1",
                        "volume": "0.0001",
                        "validate": "true",
                    },
                )
            )
        for permission, method, data in probes:
            try:
                client.call_private(method, data)
                self._set_permission(label, permission, True, None)
            except PermissionDeniedError as exc:
                self._set_permission(label, permission, False, exc.code)
            except KrakenError as exc:
                # any other answer from an order call means the permission check itself passed
                granted = True if permission == "trade" and hasattr(exc, "code") else None
                self._set_permission(label, permission, granted, getattr(exc, "code", exc.kind))
                if granted is None:
                    return

    def _record_success(self, label: str, worker: _Worker, balances: dict[str, str]) -> None:
        now = self.clock()
        worker.failures = 0
        nonce = _nonce_fields(worker.client)  # file lock + read: not under the monitor's lock
        with self._lock:
            status = self._accounts[label]
            status.last_success_at = now
            status.balances, status.balances_at, status.balance_error = balances, now, None
            status.nonce_status = nonce
        self._set_permission(label, "funds", True, None)
        self._set_state(label, ev.CONNECTED, "Balance succeeded (KRAKEN PRO CONNECTED)")
        if (
            balances != worker.last_balances
            or now - worker.last_balance_event > BALANCE_EVENT_EVERY_S
        ):
            worker.last_balances, worker.last_balance_event = balances, now
            self.emit(
                ev.Event(
                    ev.BALANCE, label, f"{len(balances)} assets", {"balances": balances}, ts=now
                )
            )

    def _record_failure(self, label: str, exc: KrakenError) -> None:
        info = ErrorInfo.from_error(exc, self.clock())
        with self._lock:
            status = self._accounts[label]
            status.last_error = info
            if exc.method == "Balance" or exc.method is None:
                status.balance_error = f"{info.kind}: {info.code or info.message}"

    def _set_permission(
        self, label: str, permission: str, granted: bool | None, code: str | None
    ) -> None:
        with self._lock:
            status = self._accounts[label]
            changed = status.permissions.get(permission) != granted
            status.permissions[permission] = granted
        if changed:
            self.emit(
                ev.Event(
                    ev.PERMISSION,
                    label,
                    f"{permission}: {granted}",
                    {"permission": permission, "granted": granted, "code": code},
                )
            )

    def _set_state(self, label: str, state: str, reason: str) -> None:
        with self._lock:
            status = self._accounts[label]
            previous = status.state
            if previous == state and status.reason == reason:
                return
            status.reason = reason
            if previous == state:
                return
            status.state, status.since = state, self.clock()
        self.emit(
            ev.Event(
                ev.STATE,
                label,
                f"{previous} -> {state}: {reason}",
                {"state": state, "previous": previous, "reason": reason},
            )
        )

    # -- clock and system status --------------------------------------------------------------------

    def _run_clock(self) -> None:
        while not self._stop.is_set():
            try:
                self._sample_clock(30.0)
            except Exception:  # keep sampling whatever one sample did
                log.exception("clock/status sample failed")
            self._stop.wait(self.settings.skew_interval_s)

    def _sample_clock(self, deadline_s: float, target_s: float = 0.01) -> None:
        public = KrakenClient(
            base_url=self.settings.api_url, timeout=min(self.settings.request_timeout_s, deadline_s)
        )
        try:
            skew = estimate_clock_skew(
                public, max_probes=10, target_uncertainty_s=target_s, deadline_s=deadline_s
            )
        except KrakenError as exc:
            log.warning("clock skew sample failed: %s", exc)
        else:
            with self._lock:
                self._skew = skew
            self.emit(
                ev.Event(
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
            )
        try:
            status = str(public.call_public("SystemStatus").get("status", "unknown"))
        except (KrakenError, AttributeError) as exc:
            log.warning("SystemStatus failed: %s", exc)
            return
        with self._lock:
            changed, self._system_status = self._system_status != status, status
        if changed:
            self.emit(
                ev.Event(
                    ev.SYSTEM_STATUS, None, f"Kraken system status: {status}", {"status": status}
                )
            )


class _EventBridge:
    """Turns a client's call/refresh reports into events and account counters."""

    def __init__(self, monitor: Monitor):
        self.monitor = monitor

    def on_refresh(self, event: RefreshEvent) -> None:
        with self.monitor._lock:
            self.monitor._accounts[event.account].refresh_count += 1
        self.monitor.emit(
            ev.Event(
                ev.NONCE_REFRESH,
                event.account,
                f"nonce baseline {event.baseline} ({event.reason})",
                {
                    "baseline": event.baseline,
                    "previous": event.previous,
                    "lead_seconds": event.lead_seconds,
                    "unit": event.unit,
                    "reason": event.reason,
                },
                ts=time.time(),
            )
        )

    def on_call(self, event: CallEvent) -> None:
        error = event.error
        if error is None or not event.private:
            return
        monitor = self.monitor
        with monitor._lock:
            monitor._accounts[event.account].last_call_at = event.started_at
        if isinstance(error, InvalidNonceError):
            with monitor._lock:
                monitor._accounts[event.account].invalid_nonce_count += 1
            monitor.emit(
                ev.Event(
                    ev.INVALID_NONCE,
                    event.account,
                    f"{error.code} on {event.method} ({error.diagnosis or 'unknown cause'})",
                    {"code": error.code, "method": event.method, "diagnosis": error.diagnosis},
                )
            )
        else:
            monitor.emit(
                ev.Event(
                    ev.API_ERROR,
                    event.account,
                    f"{event.method}: {error}",
                    {"kind": error.kind, "code": event.error_code, "method": event.method},
                )
            )


def _nonce_fields(client: KrakenClient) -> dict[str, Any]:
    status = client.nonce_status()
    return {
        "high_water": status.high_water,
        "unit": status.unit,
        "lead_seconds": status.lead_seconds,
    }

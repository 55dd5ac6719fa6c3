"""The monitor: connects every account, polls it, reconnects, and samples the clock.

:class:`Monitor` is the facade the rest of the app uses. Behind it:

* one :class:`~dashboard.monitor.polling.AccountPoller` per account, each in its own daemon thread (keys
  never wait for each other);
* one :class:`~dashboard.monitor.clock.ClockSampler` thread for the clock skew and Kraken's system status;
* the :class:`~dashboard.monitor.board.AccountBoard` holding every account's status;
* the :class:`~dashboard.monitor.bridge.EventBridge` turning the clients' reports into events.

Everything that happens becomes an :class:`~dashboard.monitor.events.Event` handed to the listeners (the
store, the metrics); :meth:`Monitor.snapshot` is the current picture.

Under ``up --gateway`` (:meth:`Monitor.attach_gateway`) each account's private calls take their
turn in the gateway's lane of the key (:class:`~dashboard.monitor.gateway_lane.LaneClient`):
the monitor and the bots share one writer and one rate budget per key, and the snapshot carries
the gateway's traffic and its trading guard. The guard's events join the monitor's, and the
trading counters the streams report reach the guard (:mod:`~dashboard.monitor.guard_link`).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from broker import FanOut, KrakenClient, Observer, StreamHandle, StreamHub, Subscriptions
from broker.nonce import NonceStore
from broker.stores import file_store
from dashboard.config import Settings
from dashboard.monitor import events as ev
from dashboard.monitor.board import AccountBoard, initial_statuses
from dashboard.monitor.bridge import EventBridge
from dashboard.monitor.clock import ClockSampler
from dashboard.monitor.events import EventQueue, Publisher
from dashboard.monitor.gateway_lane import LaneClient
from dashboard.monitor.guard_link import GuardLink
from dashboard.monitor.oneshot import one_cpu, step_once
from dashboard.monitor.polling import AccountPoller, Pause, wait_for_wake
from dashboard.monitor.retry import RetryPolicy
from dashboard.monitor.status import AccountState, Snapshot
from dashboard.monitor.streaming import StreamFeed
from dashboard.monitor.streamstatus import NOT_YET, ONE_SHOT, StreamActivity, StreamState

if TYPE_CHECKING:
    from gateway import Gateway

__all__ = ["Monitor"]

log = logging.getLogger(__name__)
Listener = Callable[[ev.Event], object]
#: a one-shot verification spends at most this long (and this share of its time) on the clock
VERIFY_CLOCK_S, VERIFY_CLOCK_SHARE = 4.0, 0.6
#: a one-shot verification aims at this skew uncertainty (a coarser one than the sampler's), and
#: stops earlier once its estimate decides the clock_skew check
VERIFY_SKEW_TARGET_S = 0.05
#: how much longer than the required parts a one-shot verification waits for SystemStatus
VERIFY_OPTIONAL_GRACE_S = 0.5


class Monitor:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        retry_policy: RetryPolicy | None = None,
        pause: Pause = wait_for_wake,
    ):
        self.settings = settings
        self.clock = clock
        self.pause = pause
        self.retry_policy = retry_policy or RetryPolicy()
        self.started_at: float | None = None
        #: set by whoever attaches a bot-log watcher to :meth:`emit`
        self.log_watching = False
        self._publish = Publisher(self.emit, clock)
        self._listeners: list[Listener] = []
        self._observers: list[Observer] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pollers: dict[str, AccountPoller] = {}
        self._board = AccountBoard(initial_statuses(settings, clock()), self._publish)
        self._sampler = ClockSampler(
            self._publish,
            api_url=settings.api_url,
            request_timeout_s=settings.request_timeout_s,
            interval_s=settings.skew_interval_s,
        )
        self._log_lock = threading.Lock()
        self._log_matches: dict[str, int] = {}
        self._gateway: Gateway | None = None
        #: the gateway's trading guard joined to the monitor (``None``: no gateway)
        self._guard: GuardLink | None = None
        #: the streams' one event-loop thread (``None``: no streams, or not started)
        self._hub: StreamHub | None = None
        self._streams: dict[str, StreamHandle] = {}
        self._stream_events: EventQueue | None = None
        self._stopped = False

    # -- wiring -------------------------------------------------------------------------------

    def attach_gateway(self, gateway: Gateway) -> None:
        """Before :meth:`start`: make every private call through ``gateway``'s lanes (``up
        --gateway``), show its traffic and its trading guard in the snapshot, publish the
        guard's events and tell it the trading counters the streams report."""
        self._gateway = gateway
        self._guard = GuardLink(gateway, self.emit, self.clock)

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def add_observer(self, observer: Observer) -> None:
        """A broker observer told about every call and refresh of every account's client."""
        self._observers.append(observer)

    def emit(self, event: ev.Event) -> None:
        """Hand ``event`` to every listener (a failing listener is logged, the others still run);
        after :meth:`stop` returned, nothing is handed on (the listeners are closed)."""
        if self._stopped:
            log.debug("after the stop, not handed on: %s %s", event.kind, event.account)
            return
        if event.kind == ev.LOG_MATCH:
            with self._log_lock:
                name = str(event.data.get("pattern"))
                self._log_matches[name] = self._log_matches.get(name, 0) + 1
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("event listener failed; event kept going")

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start polling every account, and the clock/status sampler, in daemon threads; each
        account's stream opens after its first successful call (where streams may be used)."""
        self._begin(self.settings.request_timeout_s)
        self._plan_streams()
        for label, poller in self._pollers.items():
            self._spawn(f"kw-account-{label}", poller.run, self._stop)
        self._spawn("kw-clock", self._sampler.run, self._stop)

    def _plan_streams(self) -> None:
        """Give every poller its stream feed (opened once the account is connected), or say on
        every account why there is none."""
        settings = self.settings
        if settings.ws_url is None:
            self._say_no_streams(settings.streams_off or "no stream")
            return
        self._hub = StreamHub(name="kw-streams")
        # the hub's one thread serves every stream: its events are stored from another thread
        self._stream_events = EventQueue(self.emit, name="kw-stream-events")
        publish = Publisher(self._stream_events, self.clock)
        self._say_no_streams(NOT_YET)
        counters = self._guard.observe_counter if self._guard is not None else None
        for label, poller in self._pollers.items():
            feed = StreamFeed(label, self._board, publish, on_counter=counters)
            poller.feed = feed
            poller.on_connected = functools.partial(self._open_stream, poller, feed)

    def _say_no_streams(self, reason: str) -> None:
        for label in self._pollers:
            self._board.change_stream(label, lambda s: setattr(s, "reason", reason))

    def _open_stream(self, poller: AccountPoller, feed: StreamFeed) -> None:
        if self._hub is None or self._stop.is_set():
            return
        try:
            self._streams[poller.label] = self._hub.open(
                poller.client,
                feed,
                url=self.settings.ws_url,
                # the last trades too: the fills made while a stream was down are told after it
                subscriptions=Subscriptions(snap_trades=True),
            )
        except RuntimeError:  # the monitor is stopping: the hub closed meanwhile
            log.info("stream for %s not opened: the monitor is stopping", poller.label)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the threads; waits at most ``timeout`` in all (a request in flight may be
        abandoned: the threads are daemons and its answer is not needed)."""
        self._stop.set()
        for poller in self._pollers.values():
            poller.wake()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._hub is not None:
            self._hub.close(max(0.5, deadline - time.monotonic()))
        if self._stream_events is not None:
            self._stream_events.close(max(0.5, deadline - time.monotonic()))
        if self._guard is not None:
            self._guard.close(max(0.5, deadline - time.monotonic()))
        # what a thread still says now (a call abandoned above) has no listener left to hear it
        self._stopped = True

    def verify_once(self, timeout_s: float) -> Snapshot:
        """Connect every account once, probe permissions, sample the clock; at most ``timeout_s``.

        Everything runs at once. The clock is sampled only until its estimate decides the
        ``clock_skew`` check (``estimate ± uncertainty`` entirely inside or outside the bound), and
        the snapshot keeps the uncertainty it has. The optional SystemStatus read gets at most
        :data:`VERIFY_OPTIONAL_GRACE_S` beyond the rest. Accounts still waiting for Kraken at the
        deadline stay ``connecting`` (checks pending). The verification's threads run on one CPU
        (:func:`~dashboard.monitor.oneshot.one_cpu`).
        """
        with one_cpu():  # its threads take turns on one CPU (see dashboard.monitor.oneshot)
            return self._verify(timeout_s)

    def _verify(self, timeout_s: float) -> Snapshot:
        deadline = time.monotonic() + timeout_s
        clock_s = min(timeout_s * VERIFY_CLOCK_SHARE, VERIFY_CLOCK_S)
        # the clock first: it needs no account, and its probes wait for Kraken's second boundaries
        skew = functools.partial(
            self._sampler.sample_skew,
            clock_s,
            VERIFY_SKEW_TARGET_S,
            decide_bound_s=self.settings.max_skew_s,
        )
        required = [self._spawn("kw-verify-clock", skew)]
        optional = [self._spawn("kw-verify-status", self._sampler.read_system_status, clock_s)]
        self._begin(max(0.5, min(self.settings.request_timeout_s, timeout_s * 0.8)), one_shot=True)
        self._say_no_streams(ONE_SHOT)
        required += [
            self._spawn(f"kw-verify-{label}", step_once, poller)
            for label, poller in self._pollers.items()
        ]
        _join_all(required, deadline)
        _join_all(optional, min(deadline, time.monotonic() + VERIFY_OPTIONAL_GRACE_S))
        return self.snapshot()

    def retry_now(self, label: str) -> None:
        """Attempt ``label`` now, forgetting its authentication failures (a stopped account
        resumes, a refused stream tries again). ``KeyError`` for an account that is not being
        polled."""
        self._pollers[label].retry_now()
        stream = self._streams.get(label)
        if stream is not None and self._board.stream(label).state == StreamState.REFUSED:
            stream.restart()

    def poll_soon(self, labels: Iterable[str]) -> None:
        """Poll ``labels`` now where that is safe (see :meth:`AccountPoller.poll_soon`): a deploy
        marker wants a first call after it without waiting a whole poll interval."""
        for label in labels:
            poller = self._pollers.get(label)
            if poller is not None:
                poller.poll_soon()

    def snapshot(self) -> Snapshot:
        skew, system_status = self._sampler.reading()
        with self._log_lock:
            log_matches = dict(self._log_matches)
        return Snapshot(
            started_at=self.started_at,
            taken_at=self.clock(),
            accounts=self._board.statuses(),
            skew=skew,
            system_status=system_status,
            log_matches=log_matches,
            log_watching=self.log_watching,
            gateway=self._gateway.metrics.traffic.snapshot() if self._gateway else None,
            gateway_guard=self._gateway.guard_snapshot() if self._gateway else None,
            stream_activity={
                label: _activity(handle) for label, handle in list(self._streams.items())
            },
        )

    def _begin(self, request_timeout_s: float, *, one_shot: bool = False) -> None:
        """Record the start, announce every account's first state, and build the pollers (for a
        one-shot verification, with clients whose calls take a kept-alive connection)."""
        self.started_at = self.clock()
        for label, reason in self._board.unconfigured():
            self._publish(
                ev.STATE,
                label,
                f"invalid configuration: {reason}",
                {"state": AccountState.INVALID_CONFIG, "previous": None, "reason": reason},
            )
        observer = FanOut([*self._observers, EventBridge(self._board, self._publish)])
        store_dir = self.settings.nonce_dir
        nonce_store = _nonce_store(self.settings)
        make_client: Callable[..., KrakenClient] = KrakenClient
        if one_shot:  # its calls on a kept-alive connection (see dashboard.monitor.oneshot)
            make_client = functools.partial(KrakenClient, keep_alive=True)
        if self._gateway is not None:
            make_client = functools.partial(LaneClient, gateway=self._gateway)
        for account in self.settings.accounts:
            client = make_client(
                account.key,
                account.secret,
                account=account.label,
                nonce_unit=account.nonce_unit,
                store_dir=store_dir,
                nonce_store=nonce_store,
                durable=self.settings.nonce_sync,
                base_url=self.settings.api_url,
                timeout=request_timeout_s,
                observer=observer,
            )
            self._pollers[account.label] = AccountPoller(
                account,
                client,
                self._board,
                self._publish,
                self.settings,
                self.retry_policy,
                self.pause,
            )
            self._publish(
                ev.STATE,
                account.label,
                "monitor started; connecting",
                {"state": AccountState.CONNECTING, "previous": None, "reason": "start"},
            )

    def _spawn(self, name: str, target: Callable[..., Any], *args: Any) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)
        return thread


def _nonce_store(settings: Settings) -> str | NonceStore:
    """The accounts' nonce store, opened once for all their clients: the file store (the one each
    client would open itself, shared within the process) without each client looking up its
    directories again; a Redis URL as it is (its clients share one store anyway), and so is a
    file store that cannot be looked up now (each client then fails as it would)."""
    spec = settings.nonce_store
    if spec != "file":
        return spec
    try:
        return file_store(settings.nonce_dir, durable=settings.nonce_sync)
    except (OSError, RuntimeError):
        return spec


def _activity(handle: StreamHandle) -> StreamActivity:
    info = handle.info()
    return StreamActivity(dict(info.channels), info.last_message_at)


def _join_all(threads: list[threading.Thread], deadline: float) -> None:
    """Wait for ``threads`` until the monotonic ``deadline`` at the latest."""
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))

"""The :class:`Simulator`: a strict local Kraken spot REST API on a real HTTP server, with its
private WebSocket v2 endpoint (:mod:`simulator.stream`) and order book (:mod:`simulator.book`)."""

from __future__ import annotations

import dataclasses
import random
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from os import PathLike
from types import TracebackType
from typing import Any, ClassVar

from .admin import handle_admin
from .book import OrderDesk
from .deadman import DeadMansSwitch
from .engine import Engine
from .faults import FaultController, make_faults
from .hub import StreamHub
from .journal import Journal
from .keys import KeyStats
from .market import Market
from .private_api import PrivateApi
from .scenario import KeySpec, Scenario
from .server import SimHTTPServer
from .sim_accounts import AccountsApi
from .sim_trading import TradingHooks
from .state import KEEP, SimState
from .stream import WS_PATH, StreamServer
from .stream_session import StreamContext
from .tokens import TokenBook
from .trader import Trader

__all__ = ["Simulator"]


class Simulator(AccountsApi, TradingHooks):
    """A local Kraken spot REST API for ``scenario``, served on ``host:port`` (0 = a free port),
    and its private WebSocket v2 endpoint on ``host:ws_port`` (:attr:`ws_url`).

    ``state_file`` persists every key's accepted nonces (the simulated Kraken never forgets them;
    orders and tokens live in memory only); ``seed`` makes the latency jitter and the demo
    trader's choices reproducible. Use :meth:`start`/:meth:`stop` or ``with``.
    """

    #: REST URL -> running simulator (:meth:`running_at`)
    _running: ClassVar[weakref.WeakValueDictionary[str, Simulator]] = weakref.WeakValueDictionary()

    def __init__(
        self,
        scenario: Scenario,
        host: str = "127.0.0.1",
        port: int = 0,
        state_file: str | PathLike[str] | None = None,
        seed: int | None = None,
        ws_port: int = 0,
    ) -> None:
        self.scenario = scenario
        self.host = host
        self._requested_port = port
        self._state = SimState(scenario, state_file)
        self._faults = FaultController()
        self._stopping = threading.Event()
        market = Market(scenario.prices)
        self._hub = StreamHub()
        self._journal = Journal()
        self._tokens = TokenBook(scenario.token_ttl_s, self._state.now)
        self._desk = OrderDesk(self._state, market, self._hub, scenario)
        self._deadman = DeadMansSwitch(self._desk.cancel_all, self._state.now)
        self._engine = Engine(
            self._state,
            self._faults,
            scenario.latency_ms,
            random.Random(seed),
            self._stopping,
            market,
            PrivateApi(self._desk, self._tokens, self._hub, self._deadman),
            self._journal,
        )
        self._stream = StreamServer(
            StreamContext(
                self._state, self._hub, self._tokens, self._desk, scenario.ws_heartbeat_s
            ),
            host,
            ws_port,
        )
        self._trader = Trader(self._desk, self._state, market, seed)
        self._server: SimHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lifecycle = threading.Lock()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Simulator:
        """Bind, listen and serve in a daemon thread; returns once the socket is listening."""
        with self._lifecycle:
            if self._server is not None or self._stopping.is_set():
                raise RuntimeError("a Simulator can be started once")
            server = SimHTTPServer((self.host, self._requested_port), self._engine, self._admin)
            self._server = server
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"kraken-simulator-{self.port}",
                daemon=True,
            )
            self._thread.start()
            try:
                self._stream.start()
            except OSError:
                server.shutdown()
                server.server_close()
                raise
            self._state.start()
            self._trader.start()
            self._deadman.start()
            Simulator._running[self.url] = self
        return self

    def stop(self) -> None:
        """Stop promptly: releases hung requests, cuts open connections. Idempotent."""
        with self._lifecycle:
            if self._stopping.is_set():
                return
            self._stopping.set()
            self._faults.close()
            self._trader.stop()
            self._deadman.stop()
            self._state.stop()
            server, thread = self._server, self._thread
            if server is None:
                return
            Simulator._running.pop(self.url, None)
            self._stream.stop()
            server.shutdown()
            server.close_connections()
            server.server_close()
            if thread is not None:
                thread.join(timeout=5)

    def __enter__(self) -> Simulator:
        return self.start() if self._server is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            if self._requested_port:
                return self._requested_port
            raise RuntimeError("the simulator has not been started (port 0 = chosen at start)")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"http://{host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """The private WebSocket v2 endpoint: ``ws://127.0.0.1:<port>/v2``."""
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"ws://{host}:{self._stream.port}{WS_PATH}"

    @classmethod
    def running_at(cls, url: str) -> Simulator | None:
        """The running simulator whose REST URL is ``url`` (tests find its :attr:`ws_url`)."""
        return cls._running.get(url.rstrip("/"))

    # ------------------------------------------------------------------ control
    def set_faults(self, **kw: Any) -> None:
        """Replace the current faults (see :mod:`simulator.faults`); no args clears."""
        self._faults.set(make_faults(**kw))

    def clear_faults(self) -> None:
        self._faults.clear()

    def current_faults(self) -> dict[str, object]:
        return self._faults.current()

    def set_clock_offset(self, seconds: float) -> None:
        """The simulator clock minus the real clock, as reported by ``/0/public/Time``."""
        self._state.clock_offset_s = float(seconds)

    def set_system_status(self, status: str) -> None:
        """The status ``SystemStatus`` reports (and every WebSocket connection is told)."""
        self._state.set_system_status(status)
        self._stream.status_changed()

    def set_latency(self, lo_ms: float, hi_ms: float) -> None:
        if not 0 <= lo_ms <= hi_ms:
            raise ValueError("latency must satisfy 0 <= lo <= hi")
        self._engine.latency_ms = (float(lo_ms), float(hi_ms))

    def add_key(self, spec: KeySpec) -> None:
        self._state.add_key(spec)

    def update_key(
        self,
        key: str,
        *,
        permissions: Iterable[str] | None = None,
        balances: Mapping[str, str] | None = None,
        other_writer: Any = KEEP,
        nonce_window: int | None = None,
    ) -> None:
        """Patch a key named by its public key or its name. ``other_writer=None`` removes it."""
        self._state.update_key(
            key,
            permissions=permissions,
            balances=balances,
            other_writer=other_writer,
            nonce_window=nonce_window,
        )

    def stats(self, key: str) -> KeyStats:
        """A snapshot of one key's statistics (by public key or name)."""
        return self._state.stats(key)

    def total_stats(self) -> KeyStats:
        return self._state.total_stats()

    def wait_for(
        self, key: str, predicate: Callable[[KeyStats], bool], timeout: float = 5.0
    ) -> KeyStats:
        """Block until ``predicate(stats)`` holds for ``key``; ``TimeoutError`` otherwise."""
        return self._state.wait_for(key, predicate, timeout)

    def wait_for_hanging(self, count: int = 1, timeout: float = 5.0) -> None:
        """Block until ``count`` requests are held by a ``hang`` fault (``TimeoutError``)."""
        self._faults.wait_hanging(count, timeout)

    def journal_since(self, after: int = 0) -> dict[str, Any]:
        """The request journal's entries after ``after`` (:mod:`simulator.journal`)."""
        return self._journal.since(after)

    def describe_key(self, key: str) -> dict[str, object]:
        return self._state.find(key).describe()

    def admin_snapshot(self) -> dict[str, Any]:
        """What ``GET /_sim/stats`` returns: keyed by key name, never a secret or a full key."""
        keys: dict[str, Any] = {}
        for ks in self._state.all_keys():
            keys[ks.name] = {
                **dataclasses.asdict(self._state.stats(ks.key)),
                **ks.describe(),
                "streams": dataclasses.asdict(self._hub.stats(ks.key)),
            }
        return {
            "keys": keys,
            "ws_url": self.ws_url if self._server is not None else None,
            "total": dataclasses.asdict(self.total_stats()),
            "faults": self.current_faults(),
            "clock_offset_s": self._state.clock_offset_s,
            "system_status": self._state.system_status,
            "tier": self.scenario.tier,
            "latency_ms": list(self._engine.latency_ms),
        }

    def _admin(self, verb: str, path: str, body: bytes) -> tuple[int, Any]:
        return handle_admin(self, verb, path, body)

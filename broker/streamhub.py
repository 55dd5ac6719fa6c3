"""Private streams for synchronous programs: :class:`StreamHub` runs any number of
:class:`~broker.stream.AccountStream` on ONE background thread with its own asyncio loop (the
dashboard holds every account's stream in one hub), and :func:`stream_events` is a blocking
iterator over one account's events (for a bot)::

    with StreamHub() as hub:
        handle = hub.open(client, on_event=print)   # on_event runs on the hub's thread: be quick
        handle.wait_for("up", timeout=15)
        ...
    # closed: every stream stopped, the thread joined

    for event in stream_events(client):             # a bot
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from typing import TypedDict, Unpack

from .client import KrakenClient
from .stream import AccountStream
from .streambackoff import Backoff
from .streamevents import StreamEvent, StreamState, StreamStateChanged
from .streamparse import Subscriptions
from .streamstate import StreamInfo

__all__ = ["StreamHandle", "StreamHub", "StreamOptions", "stream_events"]

log = logging.getLogger(__name__)


class StreamOptions(TypedDict, total=False):
    """The keyword options of :class:`~broker.stream.AccountStream`."""

    url: str | None
    heartbeat_timeout_s: float
    connect_timeout_s: float
    ping_interval_s: float | None
    close_timeout_s: float
    backoff: Backoff | None
    subscriptions: Subscriptions | None
    heartbeat_events: bool


class StreamHandle:
    """A stream running in a :class:`StreamHub`; every method is safe from any thread."""

    def __init__(
        self,
        hub: StreamHub,
        client: KrakenClient,
        on_event: Callable[[StreamEvent], None],
        options: StreamOptions,
    ):
        self._hub = hub
        self._on_event = on_event
        self._changed = threading.Condition()
        self._ended = threading.Event()
        self.stream = AccountStream(client, on_event=self._deliver, **options)

    def __repr__(self) -> str:
        return f"StreamHandle(account={self.account!r}, state={self.state!r})"

    @property
    def account(self) -> str:
        return self.stream.account

    @property
    def state(self) -> StreamState:
        return self.stream.state

    @property
    def reason(self) -> str | None:
        return self.stream.reason

    @property
    def connected_since(self) -> float | None:
        return self.stream.connected_since

    @property
    def last_message_at(self) -> float | None:
        return self.stream.last_message_at

    @property
    def reconnects(self) -> int:
        return self.stream.reconnects

    @property
    def tokens(self) -> int:
        return self.stream.tokens

    @property
    def running(self) -> bool:
        """False once the stream has ended (stopped, or its hub closed)."""
        return not self._ended.is_set()

    def info(self) -> StreamInfo:
        return self.stream.info()

    def restart(self) -> None:
        """Connect again now with a fresh token (after ``refused``, or to drop a connection)."""
        self.stream.restart()

    def stop(self, timeout: float | None = 5.0) -> bool:
        """Stop the stream; wait up to ``timeout`` s for it to end (not when called on the hub's
        own thread, e.g. from ``on_event``). True when it has ended."""
        self.stream.stop()
        if threading.current_thread() is self._hub.thread:
            return self._ended.is_set()
        return self._ended.wait(timeout)

    def wait_for(self, *states: StreamState, timeout: float | None = None) -> bool:
        """Block until the stream's state is one of ``states`` (now or later); False on timeout.
        Never call it on the hub's thread (from ``on_event``): it would wait for itself."""
        with self._changed:
            return self._changed.wait_for(lambda: self.stream.state in states, timeout)

    def _deliver(self, event: StreamEvent) -> None:
        if isinstance(event, StreamStateChanged):
            with self._changed:
                self._changed.notify_all()
        self._on_event(event)

    def _ended_now(self) -> None:
        self._ended.set()
        with self._changed:
            self._changed.notify_all()


class StreamHub:
    """Many account streams on one background thread. ``open`` starts one, ``close`` stops them
    all and joins the thread. Events reach each stream's ``on_event`` on the hub's thread, one
    at a time: keep it quick (a queue put, a counter), or every stream of the hub waits."""

    def __init__(self, name: str = "kraken-streams"):
        self._lock = threading.Lock()
        self._handles: dict[StreamHandle, asyncio.Task[None] | None] = {}
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: asyncio.Event | None = None
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._thread_main, name=name, daemon=True)
        self.thread.start()
        self._ready.wait()

    def __enter__(self) -> StreamHub:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def handles(self) -> list[StreamHandle]:
        """The streams still running."""
        with self._lock:
            return [h for h in self._handles if h.running]

    def open(
        self,
        client: KrakenClient,
        on_event: Callable[[StreamEvent], None],
        **options: Unpack[StreamOptions],
    ) -> StreamHandle:
        """Start a stream for ``client``'s account (options: :class:`StreamOptions`). A bad URL
        raises :class:`~broker.errors.ConfigurationError` here, before any token is fetched."""
        handle = StreamHandle(self, client, on_event, options)
        with self._lock:
            if self._closed or self._loop is None:
                raise RuntimeError("this StreamHub is closed")
            self._handles[handle] = None
            self._loop.call_soon_threadsafe(self._spawn, handle)
        return handle

    def close(self, timeout: float = 15.0) -> None:
        """Stop every stream, wait for them to end, and join the thread (idempotent)."""
        with self._lock:
            already, self._closed = self._closed, True
            loop, closing = self._loop, self._closing
        if not already and loop is not None and closing is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already gone
                loop.call_soon_threadsafe(closing.set)
        if threading.current_thread() is not self.thread:
            self.thread.join(timeout)
            if self.thread.is_alive():
                log.warning("stream hub: the thread did not end within %.1f s", timeout)

    # -- on the hub's thread ------------------------------------------------------------------

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception:
            log.exception("stream hub: the event loop failed")
        finally:
            with self._lock:
                self._closed = True
                handles = list(self._handles)
            for handle in handles:
                handle._ended_now()
            self._ready.set()

    async def _main(self) -> None:
        with self._lock:
            self._loop = asyncio.get_running_loop()
            self._closing = asyncio.Event()
            closing = self._closing
        self._ready.set()
        await closing.wait()
        with self._lock:
            running = dict(self._handles)
        for handle in running:
            handle.stream.stop()
        tasks = [task for task in running.values() if task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=10.0)

    def _spawn(self, handle: StreamHandle) -> None:
        if self._closing is not None and self._closing.is_set():
            handle._ended_now()
            return
        task = asyncio.create_task(handle.stream.run(), name=f"stream-{handle.account}")
        task.add_done_callback(lambda _task: self._finished(handle))
        with self._lock:
            self._handles[handle] = task

    def _finished(self, handle: StreamHandle) -> None:
        with self._lock:
            self._handles.pop(handle, None)
        handle._ended_now()


def stream_events(client: KrakenClient, **options: Unpack[StreamOptions]) -> Iterator[StreamEvent]:
    """One account's stream events, blocking between them (heartbeats arrive about once a second
    while it is up, so the loop turns at least that often unless ``heartbeat_events=False``).
    Leaving the loop (``break``, an exception, closing the generator) stops the stream and its
    thread. Events queue up while the loop body runs: none is lost."""
    events: queue.Queue[StreamEvent] = queue.Queue()
    with StreamHub(name=f"kraken-stream-{client.account}") as hub:
        hub.open(client, events.put, **options)
        while True:
            yield events.get()

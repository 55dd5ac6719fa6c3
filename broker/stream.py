"""``AccountStream``: one account's private Kraken WebSocket v2 stream (``balances`` and
``executions``), kept up for as long as it runs.

Each connection starts with a fresh token from ``GetWebSocketsToken``, fetched through the
account's :class:`~broker.client.KrakenClient` (a private REST call: it spends a nonce through the
one-writer client, in a worker thread so the event loop never blocks). Then it subscribes to
``balances`` and ``executions`` and waits for both acknowledgements (``connect_timeout_s``); the
stream is ``up`` only when both succeeded. While up, any message (Kraken sends a heartbeat about
once a second) proves the connection alive: none for ``heartbeat_timeout_s`` and the connection is
closed and made again. A lost connection, a close from the server, an error answer: the stream
goes ``down`` and connects again after a backoff with full jitter (:mod:`broker.streambackoff`).
An ``ESession:Invalid session`` answer costs one fresh token and a reconnect. A permission error
(the key lacks "Access WebSocket API", or it is invalid) makes the stream ``refused``: it stops
trying until :meth:`AccountStream.restart`. Messages that are not JSON or not shaped as Kraken
documents are counted and skipped; nothing a server sends can end :meth:`AccountStream.run`.

Events (:mod:`broker.streamevents`) go to ``on_event``, called on the event loop's thread: it
must be quick and must not block (hand the event to a queue or another thread for slow work). An
exception it raises is logged and swallowed. The token is never logged, never put in an exception,
a reason or a ``repr``.

For synchronous programs, :class:`~broker.streamhub.StreamHub` runs many streams on one
background thread, and :func:`~broker.streamhub.stream_events` iterates over one account's events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from .client import KrakenClient
from .errors import (
    ConfigurationError,
    InvalidKeyError,
    InvalidNonceError,
    InvalidSignatureError,
    KrakenError,
    PermissionDeniedError,
    RateLimitError,
    TemporaryLockoutError,
)
from .paths import parse_ws_url, ws_url_default
from .streambackoff import Backoff
from .streamevents import StreamEvent
from .streamparse import (
    Frame,
    MessageParser,
    Subscriptions,
    error_kind,
    ping_request,
    subscribe_requests,
)
from .streamstate import StreamRecord

__all__ = ["AccountStream"]

log = logging.getLogger(__name__)

#: token errors no retry can fix: the stream is refused until restarted
_REFUSING_ERRORS = (
    PermissionDeniedError,
    InvalidKeyError,
    InvalidSignatureError,
    ConfigurationError,
)
#: a token call Kraken answered with one of these is not tried again for at least this long
#: (each try spends a nonce and the key's call budget; a lockout lasts about 15 minutes, and
#: failed calls during it prolong it)
SLOW_DOWN_S: tuple[tuple[type[KrakenError], float], ...] = (
    (TemporaryLockoutError, 900.0),
    (RateLimitError, 60.0),
    (InvalidNonceError, 60.0),
)
#: the largest message accepted (an executions snapshot of many open orders is large)
_MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class _Down(Exception):
    """This connection is over; connect again after a backoff (at least ``wait_s``)."""

    def __init__(self, reason: str, wait_s: float = 0.0):
        super().__init__(reason)
        self.reason = reason
        self.wait_s = wait_s


class _Refused(_Down):
    """No retry can fix it: wait for ``restart()``."""


class AccountStream(StreamRecord):
    """One account's private stream. See the module docstring.

    ``url=None`` means :func:`~broker.paths.ws_url_default` for the client's REST base URL (a
    :class:`~broker.errors.ConfigurationError` now when it is not Kraken's own and
    ``KRAKEN_WS_AUTH_URL`` is not set). ``ping_interval_s`` sends Kraken a ``ping`` that often
    (``None``: never); ``heartbeat_events=False`` keeps :class:`~broker.streamevents.Heartbeat`
    events from ``on_event`` (``last_message_at`` still moves). ``clock`` stamps events.
    """

    def __init__(
        self,
        client: KrakenClient,
        *,
        on_event: Callable[[StreamEvent], None],
        url: str | None = None,
        heartbeat_timeout_s: float = 5.0,
        connect_timeout_s: float = 10.0,
        ping_interval_s: float | None = 30.0,
        close_timeout_s: float = 1.0,
        backoff: Backoff | None = None,
        subscriptions: Subscriptions | None = None,
        heartbeat_events: bool = True,
        clock: Callable[[], float] = time.time,
    ):
        if heartbeat_timeout_s <= 0 or connect_timeout_s <= 0 or close_timeout_s <= 0:
            raise ValueError("stream timeouts must be positive")
        if ping_interval_s is not None and ping_interval_s <= 0:
            raise ValueError("ping_interval_s must be positive or None")
        self.client = client
        url = parse_ws_url(url) if url is not None else ws_url_default(api_url=client.uri)
        super().__init__(client.account, url, on_event, clock, heartbeat_events)
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.ping_interval_s = ping_interval_s
        self.close_timeout_s = close_timeout_s
        self.backoff = backoff if backoff is not None else Backoff()
        #: the current connection's token, only to scrub it from Kraken's error texts (never shown)
        self._token: str | None = None
        self.subscriptions = subscriptions if subscriptions is not None else Subscriptions()
        self._attempts = self._req_id = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._current: asyncio.Task[None] | None = None
        self._stop_requested = self._restart_requested = self._refused = False
        self._running = False

    def __repr__(self) -> str:
        return f"AccountStream(account={self.account!r}, url={self.url!r}, state={self.state!r})"

    # -- control (any thread) -----------------------------------------------------------------

    def stop(self) -> None:
        """Close the connection and end :meth:`run` (safe from any thread; does not wait)."""
        self._stop_requested = True
        self._poke()

    def restart(self) -> None:
        """Connect again now with a fresh token: after ``refused``, or to drop a connection."""
        self._restart_requested = True
        self._poke()

    def _poke(self) -> None:
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: run() is over
            loop.call_soon_threadsafe(self._interrupt)

    def _interrupt(self) -> None:
        if self._wake is not None:
            self._wake.set()
        if self._current is not None and not self._current.done():
            self._current.cancel()

    # -- the loop -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Keep the stream up until :meth:`stop` (or until cancelled)."""
        if self._running:
            raise RuntimeError(f"{self!r} is already running")
        self._running = True
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        try:
            while not self._stop_requested:
                if self._restart_requested:
                    self._restart_requested = self._refused = False
                    self.backoff.reset()
                elif self._refused:
                    await self._wait(None)
                    continue
                slow_down = await self._attempt()
                if not (self._stop_requested or self._refused or self._restart_requested):
                    await self._wait(max(self.backoff.next_delay(), slow_down))
        finally:
            self._running = False
            self._current = None
            self._set_state("stopped", None)

    async def _wait(self, delay: float | None) -> None:
        assert self._wake is not None
        try:
            async with asyncio.timeout(delay):
                await self._wake.wait()
        except TimeoutError:
            pass
        self._wake.clear()

    async def _attempt(self) -> float:
        """One connection attempt, to its end; the least wait before the next (seconds)."""
        assert self._wake is not None
        self._wake.clear()  # a poke from before this attempt must not skip its backoff
        self._attempts += 1
        if self._attempts > 1:
            self._count_reconnect()
        task = asyncio.create_task(self._session(), name=f"kraken-stream-{self.account}")
        self._current = task
        try:
            await task
        except asyncio.CancelledError:
            task_now = asyncio.current_task()
            if task_now is not None and task_now.cancelling():
                raise  # run() itself is cancelled
            if not self._stop_requested:
                self._set_state("down", "restarting")
        except _Refused as exc:
            self._refused = True
            self._set_state("refused", exc.reason)
        except _Down as exc:
            self._set_state("down", exc.reason)
            return exc.wait_s
        except Exception as exc:  # a bug of ours must not end the stream
            log.exception("stream %s: unexpected error", self.account)
            self._set_state("down", f"internal error: {type(exc).__name__}")
        finally:
            self._current = None
            self.backoff.disconnected()  # nothing when this attempt never came up
        return 0.0

    async def _session(self) -> None:
        """One connection, from the token to its end (always by an exception). The state says
        ``down`` (or ``refused``) as soon as the end is known, before the close handshake."""
        self._set_state("connecting", None)
        token = self._token = await self._fetch_token()
        opened: list[ClientConnection] = []
        try:
            try:
                await self._connection(token, opened)
            except (OSError, InvalidHandshake, InvalidURI) as exc:
                raise _Down(f"cannot connect: {exc}") from None
            except ConnectionClosed as exc:
                raise _Down(_closed_reason(exc)) from None
        except _Down as exc:
            exc.reason = _scrub(exc.reason, token)
            self._set_state("refused" if isinstance(exc, _Refused) else "down", exc.reason)
            raise
        finally:
            self._token = None
            if opened:
                await _close(opened[0])

    async def _connection(self, token: str, opened: list[ClientConnection]) -> None:
        parser = MessageParser(self.account, self.clock)
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                ws = await connect(
                    self.url,
                    open_timeout=None,
                    ping_interval=None,
                    close_timeout=self.close_timeout_s,
                    max_size=_MAX_MESSAGE_BYTES,
                )
                opened.append(ws)
                await self._subscribe(ws, token, parser)
        except TimeoutError:
            raise _Down(f"not up within {self.connect_timeout_s:g} s") from None
        self.backoff.connected()
        self._record_up()
        await self._read(ws, parser)

    async def _fetch_token(self) -> str:
        self._count_token()
        try:
            result = await asyncio.to_thread(self.client.call_private, "GetWebSocketsToken")
        except _REFUSING_ERRORS as exc:
            raise _Refused(f"GetWebSocketsToken: {exc}") from None
        except KrakenError as exc:
            wait = max((s for kind, s in SLOW_DOWN_S if isinstance(exc, kind)), default=0.0)
            raise _Down(f"GetWebSocketsToken: {exc}", wait) from None
        token = result.get("token") if isinstance(result, dict) else None
        if not isinstance(token, str) or not token:
            raise _Down("GetWebSocketsToken: the answer holds no token")
        return token

    def _next_req_id(self) -> int:
        self._req_id += 1
        return self._req_id

    async def _subscribe(self, ws: ClientConnection, token: str, parser: MessageParser) -> None:
        first = self._next_req_id()
        self._next_req_id()
        requests = subscribe_requests(token, self.subscriptions, first)
        for request in requests:
            await ws.send(request)
        # the requests go in this order (subscribe_requests): balances, then executions
        pending = {first: "balances", first + 1: "executions"}
        while pending:
            frame = self._take(await ws.recv(), parser)
            if frame is None:
                continue
            ack = frame.ack
            if ack is not None and ack.req_id in pending:
                channel = pending.pop(ack.req_id)
                if not ack.success:
                    _raise_for(ack.error or "subscription refused", f"subscribe {channel}")
            else:
                self._check_error(frame)

    async def _read(self, ws: ClientConnection, parser: MessageParser) -> None:
        loop = asyncio.get_running_loop()
        last = next_ping = loop.time()
        if self.ping_interval_s is not None:
            next_ping += self.ping_interval_s
        while True:
            wait = last + self.heartbeat_timeout_s - loop.time()
            if self.ping_interval_s is not None:
                wait = min(wait, next_ping - loop.time())
            try:
                async with asyncio.timeout(max(wait, 0.0)):
                    raw = await ws.recv()
            except TimeoutError:
                if loop.time() - last >= self.heartbeat_timeout_s:
                    raise _Down(f"no message for {self.heartbeat_timeout_s:g} s") from None
                await ws.send(ping_request(self._next_req_id()))
                next_ping = loop.time() + (self.ping_interval_s or 0.0)
                continue
            last = loop.time()
            self._check_error(self._take(raw, parser))

    def _check_error(self, frame: Frame | None) -> None:
        """End the connection on a session or permission error Kraken sends (an invalidated
        token); any other error answer (to a request of ours) is logged and the stream goes on."""
        if frame is None:
            return
        error = frame.error
        if frame.ack is not None and not frame.ack.success:
            error = frame.ack.error or "subscription refused"
        if error is None:
            return
        if error_kind(error) == "other":
            self._count_unexpected()
            log.warning(
                "stream %s: Kraken answered an error: %s",
                self.account,
                _scrub(error, self._token or ""),
            )
            return
        _raise_for(error, "stream")


def _raise_for(error: str, what: str) -> None:
    kind = error_kind(error)
    if kind == "permission":
        raise _Refused(f"{what}: {error}")
    if kind == "session":
        raise _Down(f"{what}: {error} (a fresh token on the next connection)")
    raise _Down(f"{what}: {error}")


def _closed_reason(exc: ConnectionClosed) -> str:
    """``closed by the server (1011: reason)``, ``closed (1009: ...)`` when this side closed it
    (a protocol error, a message too large), else ``connection lost``."""
    close, by = (exc.rcvd, "closed by the server") if exc.rcvd else (exc.sent, "closed")
    if close is None:
        return "connection lost"
    return f"{by} ({close.code}{': ' + close.reason if close.reason else ''})"


def _scrub(text: str, token: str) -> str:
    return text.replace(token, "<token>") if token else text


async def _close(ws: ClientConnection) -> None:
    """Close ``ws`` (a close handshake bounded by its close timeout), aborting on any trouble."""
    try:
        await ws.close()
    except asyncio.CancelledError:
        ws.transport.abort()
        raise
    except Exception:
        ws.transport.abort()

"""One WebSocket v2 connection of the private endpoint: its requests (``ping``, ``subscribe``,
``unsubscribe``), its subscriptions, its heartbeats and its one ordered outgoing queue.

Everything here runs on the stream server's event loop, except the thread-safe
:class:`StreamSession` methods the hub and the faults call (``push``, ``stall``, ``resume``,
``drop``, ``end_session``), which only schedule work on that loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from .book import OrderDesk
from .hub import Entry, StreamHub, Subscription
from .orders import rfc3339
from .state import SimState
from .tokens import TokenBook

__all__ = ["API_VERSION", "StreamContext", "StreamSession"]

API_VERSION = "2.0.10"
INVALID_SESSION = "ESession:Invalid session"
INVALID_PERMISSIONS = "EAccount:Invalid permissions"
#: channel -> the key permission it needs (besides "websocket")
_CHANNELS = {"balances": "funds", "executions": "orders"}
#: channel -> its boolean options and their defaults
_OPTIONS = {
    "balances": {"snapshot": True},
    "executions": {
        "snap_orders": True,
        "snap_trades": False,
        "order_status": True,
        "ratecounter": False,
        "snapshot": True,  # the deprecated name of snap_orders
    },
}


@dataclass
class StreamContext:
    """What every session of one server shares."""

    state: SimState
    hub: StreamHub
    tokens: TokenBook
    desk: OrderDesk
    heartbeat_s: float


class StreamSession:
    def __init__(self, ctx: StreamContext, ws: ServerConnection, conn_id: int) -> None:
        self.id = conn_id
        self.key: str | None = None
        self.connection_id = secrets.randbits(63)
        self._ctx = ctx
        self._ws = ws
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._subs: dict[str, Subscription] = {}
        self._seq: dict[str, int] = {}

    # ------------------------------------------------------------------ any thread
    def push(self, channel: str, data: list[Entry]) -> None:
        self._call(self._update, channel, data)

    def stall(self) -> None:
        self._call(self._flowing.clear)

    def resume(self) -> None:
        self._call(self._flowing.set)

    def drop(self) -> None:
        """Close the TCP connection at once: no close frame."""
        self._call(self._ws.transport.abort)

    def end_session(self) -> None:
        """The key's session was invalidated: say so, then close the connection."""
        self._call(self._invalidated)

    def status_changed(self) -> None:
        """The system status changed: a new ``status`` message."""
        self._call(lambda: self._send(self._status()))

    def _call(self, function: Callable[..., Any], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the server's loop has stopped
            self._loop.call_soon_threadsafe(function, *args)

    # ------------------------------------------------------------------ the loop
    async def run(self) -> None:
        hub = self._ctx.hub
        hub.opened(self)
        writer = asyncio.create_task(self._write())
        beats = asyncio.create_task(self._heartbeats())
        self._send(self._status())
        try:
            async for raw in self._ws:
                self._handle(raw)
        except ConnectionClosed:
            pass
        finally:
            writer.cancel()
            beats.cancel()
            for sub in hub.closed(self):
                self._ctx.tokens.release(sub.token)

    async def _write(self) -> None:
        while True:
            message = await self._queue.get()
            await self._flowing.wait()
            try:
                if message is None:
                    await self._ws.close(1008, INVALID_SESSION)
                    return
                await self._ws.send(message)
            except ConnectionClosed:
                return
            self._ctx.hub.count_sent(self.key)

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self._ctx.heartbeat_s)
            if self._flowing.is_set():
                self._send({"channel": "heartbeat"})

    def _send(self, doc: dict[str, Any] | None) -> None:
        self._queue.put_nowait(None if doc is None else json.dumps(doc, separators=(",", ":")))

    def _sequenced(self, channel: str, kind: str, data: list[Entry]) -> dict[str, Any]:
        self._seq[channel] = sequence = self._seq.get(channel, 0) + 1
        return {"channel": channel, "type": kind, "data": data, "sequence": sequence}

    def _update(self, channel: str, data: list[Entry]) -> None:
        if channel in self._subs:
            self._send(self._sequenced(channel, "update", data))

    def _invalidated(self) -> None:
        now = rfc3339(self._ctx.state.now())
        self._send(
            {
                "error": INVALID_SESSION,
                "method": "subscribe",
                "success": False,
                "time_in": now,
                "time_out": now,
            }
        )
        self._send(None)

    def _status(self) -> dict[str, Any]:
        data = {
            "api_version": "v2",
            "connection_id": self.connection_id,
            "system": self._ctx.state.system_status,
            "version": API_VERSION,
        }
        return {"channel": "status", "type": "update", "data": [data]}

    # ------------------------------------------------------------------ requests
    def _answer(self, method: str, request: dict[str, Any], time_in: str, **fields: Any) -> None:
        doc: dict[str, Any] = {"method": method, **fields}
        if method != "pong":
            doc["success"] = "error" not in fields
        if "req_id" in request:
            doc["req_id"] = request["req_id"]
        doc.update(time_in=time_in, time_out=rfc3339(self._ctx.state.now()))
        self._send(doc)

    def _handle(self, raw: str | bytes) -> None:
        time_in = rfc3339(self._ctx.state.now())
        try:
            request = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            request = None
        if not isinstance(request, dict):
            self._answer("error", {}, time_in, error="Malformed request")
            return
        method = request.get("method")
        if method == "ping":
            self._answer("pong", request, time_in)
        elif method == "subscribe":
            self._subscribe(request, time_in)
        elif method == "unsubscribe":
            self._unsubscribe(request, time_in)
        else:
            name = method if isinstance(method, str) else "error"
            self._answer(name, request, time_in, error="EGeneral:Unknown method")

    def _subscribe(self, request: dict[str, Any], time_in: str) -> None:
        params = request.get("params")
        params = params if isinstance(params, dict) else {}
        checked = self._check(params)
        if isinstance(checked, str):
            self._answer("subscribe", request, time_in, error=checked)
            return
        channel, options, token = checked
        ctx = self._ctx
        key = ctx.tokens.claim(token)
        ks = ctx.state.lookup(key)
        if ks is None:
            self._answer("subscribe", request, time_in, error=INVALID_SESSION)
            return
        if self.key is None:
            ctx.hub.bind(self, ks.key)
        sub = Subscription(
            channel,
            ks.key,
            token,
            options.get("ratecounter", False),
            options.get("order_status", True),
        )

        def register() -> None:
            self._subs[channel] = sub
            ctx.hub.add(self, sub)

        snapshot_asked = options.get("snapshot", True) and options.get("snap_orders", True)
        data = ctx.desk.subscribe(
            ks, sub, snapshot_asked, options.get("snap_trades", False), register
        )
        result: dict[str, Any] = {"channel": channel, "snapshot": data is not None}
        if sub.ratecounter:
            result["maxratecount"] = ctx.desk.maxratecount
        self._answer("subscribe", request, time_in, result=result)
        if data is not None:
            shaped = [e for e in (sub.shape(entry) for entry in data) if e is not None]
            self._send(self._sequenced(channel, "snapshot", shaped))

    def _check(self, params: dict[str, Any]) -> tuple[str, dict[str, bool], str] | str:
        """``(channel, options, token)`` of a subscribe request, or its error."""
        channel = params.get("channel")
        if channel not in _CHANNELS:
            return "EGeneral:Invalid arguments:channel"
        options: dict[str, bool] = {}
        for name, default in _OPTIONS[channel].items():
            value = params.get(name, default)
            if not isinstance(value, bool):
                return f"EGeneral:Invalid arguments:{name}"
            options[name] = value
        token = params.get("token")
        if not isinstance(token, str) or not token:
            return "EGeneral:Invalid arguments:token"
        ks = self._ctx.state.lookup(self._ctx.tokens.key_of(token))
        if ks is None:
            return INVALID_SESSION
        if not {"websocket", _CHANNELS[channel]} <= ks.permissions:
            return INVALID_PERMISSIONS
        if channel in self._subs:
            return "Already subscribed"
        return channel, options, token

    def _unsubscribe(self, request: dict[str, Any], time_in: str) -> None:
        params = request.get("params")
        channel = params.get("channel") if isinstance(params, dict) else None
        sub = self._subs.pop(channel, None) if isinstance(channel, str) else None
        if sub is None:
            self._answer("unsubscribe", request, time_in, error="Subscription Not Found")
            return
        self._ctx.hub.remove(self, sub)
        self._ctx.tokens.release(sub.token)
        self._answer("unsubscribe", request, time_in, result={"channel": channel})

"""The ``/_sim/`` admin routes (JSON in, JSON out). Never subject to faults; never show a secret.

* ``GET  /_sim/stats``          per-key statistics keyed by key name, totals, faults, clock, status
* ``GET  /_sim/faults``         the current faults
* ``POST /_sim/faults``         set faults (``set_faults`` fields); ``{}`` clears them
* ``POST /_sim/clock``          ``{"offset_s": 2.5}``: the simulator clock minus the real clock
* ``POST /_sim/status``         ``{"status": "maintenance"}``: the system status
* ``POST /_sim/keys/<name>``    patch a key: ``permissions``, ``balances``, ``other_writer``
                                (an object, or null to remove it), ``nonce_window``
* ``GET  /_sim/orders/<name>``  the key's open orders (as ``OpenOrders`` lists them)
* ``POST /_sim/orders/<name>``  place one: ``{"pair", "side", "volume", "price", "ordertype"}``
* ``POST /_sim/orders/<name>/<txid>/fill``    ``{"volume": "0.5"}`` (none: the rest)
* ``POST /_sim/orders/<name>/<txid>/cancel``  (or ``/expire``); refusals answer 409
* ``GET  /_sim/trading/<name>`` the key's trading counters by pair, dead man's switch, the
                                ``EOrder:Rate limit exceeded`` answers it got, open orders' ages
* ``POST /_sim/streams/drop``   ``{"key": name}`` (none: every connection): cut the TCP
* ``POST /_sim/streams/stall``  ``{"key": name}``: send nothing until ``/_sim/streams/resume``
* ``POST /_sim/streams/invalidate``  ``{"key": name}``: ``ESession:Invalid session``, close
* ``POST /_sim/streams/refuse`` ``{"on": true}``: answer new handshakes with HTTP 503
* ``GET  /_sim/journal[/<after>]``  the private requests that carried ``kw_request=<id>``, as
                                judged (after sequence number ``after``): see simulator.journal
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Protocol
from urllib.parse import unquote

from .admin_orders import OrdersTarget, handle_orders, handle_streams
from .journal import JournalTarget, handle_journal

__all__ = ["ADMIN_ROUTES", "AdminTarget", "handle_admin"]

ADMIN_ROUTES = __doc__.split("\n\n", 1)[1].strip() if __doc__ else ""
_KEY_PATCH_FIELDS = ("permissions", "balances", "other_writer", "nonce_window")


class AdminTarget(OrdersTarget, JournalTarget, Protocol):
    """What the admin routes control (the :class:`~simulator.Simulator` provides it)."""

    def admin_snapshot(self) -> dict[str, Any]: ...

    def set_faults(self, **kw: Any) -> None: ...

    def current_faults(self) -> dict[str, object]: ...

    def set_clock_offset(self, seconds: float) -> None: ...

    def set_system_status(self, status: str) -> None: ...

    def update_key(
        self,
        key: str,
        *,
        permissions: Iterable[str] | None = None,
        balances: Mapping[str, str] | None = None,
        other_writer: Any = ...,
        nonce_window: int | None = None,
    ) -> None: ...

    def describe_key(self, key: str) -> dict[str, object]: ...

    def trading_snapshot(self, key: str) -> dict[str, Any]: ...


class _BadRequest(ValueError):
    pass


def _object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _BadRequest("the body must be a JSON object") from None
    if not isinstance(doc, dict):
        raise _BadRequest("the body must be a JSON object")
    return doc


def handle_admin(sim: AdminTarget, verb: str, path: str, body: bytes) -> tuple[int, Any]:
    route = path.removeprefix("/_sim/").strip("/")
    if route.startswith(("orders/", "streams/")):
        return _orders_or_streams(sim, verb, route, body)
    if route == "journal" or route.startswith("journal/"):
        return handle_journal(sim, verb, route)
    if route.startswith("trading/"):
        return _trading(sim, verb, unquote(route.removeprefix("trading/")))
    if route not in ("stats", "faults", "clock", "status") and not route.startswith("keys/"):
        return 404, {"error": f"unknown admin route {path!r}"}
    try:
        if route == "stats":
            return (200, sim.admin_snapshot()) if verb == "GET" else (405, {"error": "use GET"})
        if route == "faults":
            if verb == "POST":
                sim.set_faults(**_object(body))
            return 200, {"faults": sim.current_faults()}
        if verb != "POST":
            return 405, {"error": "use POST"}
        if route == "clock":
            offset = _object(body).get("offset_s")
            if isinstance(offset, bool) or not isinstance(offset, int | float):
                raise _BadRequest("offset_s must be a number of seconds")
            sim.set_clock_offset(float(offset))
            return 200, {"clock_offset_s": float(offset)}
        if route == "status":
            status = _object(body).get("status")
            sim.set_system_status(str(status))
            return 200, {"system_status": status}
        if route.startswith("keys/"):
            name = unquote(route.removeprefix("keys/"))
            patch = _object(body)
            extra = sorted(set(patch) - set(_KEY_PATCH_FIELDS))
            if extra:
                raise _BadRequest(
                    f"unknown field {extra[0]!r} (known: {', '.join(_KEY_PATCH_FIELDS)})"
                )
            sim.update_key(name, **patch)
            return 200, {"key": name, **sim.describe_key(name)}
    except KeyError as exc:
        return 404, {"error": str(exc.args[0]) if exc.args else "not found"}
    except ValueError as exc:
        return 400, {"error": str(exc)}
    return 404, {"error": f"unknown admin route {path!r}"}


def _trading(sim: AdminTarget, verb: str, name: str) -> tuple[int, Any]:
    if verb != "GET":
        return 405, {"error": "use GET"}
    try:
        return 200, sim.trading_snapshot(name)
    except KeyError as exc:
        return 404, {"error": str(exc.args[0]) if exc.args else "not found"}


def _orders_or_streams(sim: AdminTarget, verb: str, route: str, body: bytes) -> tuple[int, Any]:
    if verb not in ("GET", "POST") or (verb == "GET" and not route.startswith("orders/")):
        return 405, {"error": "use POST"}
    try:
        doc = _object(body)
        if route.startswith("orders/"):
            return handle_orders(sim, verb, route, doc)
        return handle_streams(sim, route, doc)
    except KeyError as exc:
        return 404, {"error": str(exc.args[0]) if exc.args else "not found"}
    except ValueError as exc:
        return 400, {"error": str(exc)}

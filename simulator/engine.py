"""What the simulated Kraken answers to one API request, independent of the HTTP plumbing.

Order for every API request: (0) faults, (1) latency (a random delay uniform in [lo, hi] ms, slept
outside any lock so concurrent requests can overtake each other, as on a network), then the
request is routed. A private request is then judged: system status (maintenance answers
``EService:Unavailable``), method, key, lockout, signature, rate limit, nonce, permission (see
:mod:`simulator.state`), and finally its arguments.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from broker.limits import call_cost
from broker.signing import InvalidSecretError, sign

from .endpoints import PRIVATE_METHODS, PUBLIC_METHODS, private_result, public_result
from .faults import FaultController
from .journal import Journal
from .keys import KeyState
from .market import MARKET_METHODS, Market
from .private_api import PrivateApi
from .state import SimState

__all__ = ["PRIVATE_PREFIX", "PUBLIC_PREFIX", "Engine", "Reply", "json_bytes"]

PUBLIC_PREFIX = "/0/public/"
PRIVATE_PREFIX = "/0/private/"
JSON_TYPE = "application/json"
HTML_TYPE = "text/html"
_FORM_TYPE = "application/x-www-form-urlencoded"


def json_bytes(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class Reply:
    """An answer, or an instruction to give none: ``action`` is "send", "drop" or "hang"."""

    status: int = 200
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: tuple[tuple[str, str], ...] = ()
    action: str = "send"
    generation: int = 0

    @classmethod
    def ok(cls, result: Any) -> Reply:
        return cls(body=json_bytes({"error": [], "result": result}))

    @classmethod
    def error(cls, code: str) -> Reply:
        return cls(body=json_bytes({"error": [code]}))

    @classmethod
    def html(cls, status: int, allow: str | None = None) -> Reply:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Origin Error" if status >= 500 else "Error"
        body = f"<html><body><h1>{status} {phrase}</h1></body></html>".encode()
        headers = (("Allow", allow),) if allow else ()
        return cls(status=status, body=body, content_type=HTML_TYPE, headers=headers)


def signature_ok(secret: str, urlpath: str, nonce: str, body: bytes, api_sign: str) -> bool:
    """Check ``API-Sign`` over the raw body; ``nonce`` is the body's nonce field as received."""
    if not api_sign:
        return False
    try:
        given = base64.b64decode(api_sign.strip(), validate=True)
        # sign() hashes str(nonce) + postdata: pass the nonce inside postdata so any text works
        expected = base64.b64decode(sign(urlpath, "", nonce.encode("utf-8") + body, secret))
    except (binascii.Error, ValueError, InvalidSecretError):
        return False
    return hmac.compare_digest(given, expected)


class Engine:
    def __init__(
        self,
        state: SimState,
        faults: FaultController,
        latency_ms: tuple[float, float],
        rng: random.Random,
        stopping: threading.Event,
        market: Market | None = None,
        api: PrivateApi | None = None,
        journal: Journal | None = None,
    ) -> None:
        self.state = state
        self.journal = journal
        self.api = api
        self.market = market if market is not None else Market()
        self.faults = faults
        self.latency_ms = latency_ms
        self._rng = rng
        self._rng_lock = threading.Lock()
        self.stopping = stopping

    def handle(
        self,
        verb: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        client_gone: Callable[[], bool] = lambda: False,
        query: str = "",
    ) -> Reply:
        """Answer one API request. ``headers`` has lower-case names; ``client_gone`` blocks until
        the client has closed its connection (a ``late_ms`` fault waits for it); ``query`` is the
        URL's query string (a public GET's parameters)."""
        arrived = time.monotonic()
        private = path.startswith(PRIVATE_PREFIX)
        ks = self.state.lookup(headers.get("api-key", "").strip()) if private else None
        method = path.rsplit("/", 1)[-1]
        fault, generation = self.faults.claim("private" if private else "public", method)
        self._delay(fault.latency_ms if fault and fault.latency_ms is not None else self.latency_ms)
        status = self.state.system_status
        if fault is not None and fault.late_ms is not None:
            if client_gone():
                self.stopping.wait(fault.late_ms / 1000.0)
                self.state.count_late(ks)
            fault = None  # judged like any request, only later
        if fault is not None:
            if fault.drop:
                return Reply(action="drop")
            if fault.hang:
                return Reply(action="hang", generation=generation)
            if fault.http_status is not None:
                return Reply.html(fault.http_status)
            if fault.body is not None:
                self.state.finish(ks, ok=False)
                return Reply(body=fault.body.encode("utf-8"))
            if fault.api_error is not None:
                self.state.finish(ks, ok=False)
                return Reply.error(fault.api_error)
            status = fault.system_status or status
        if not private:
            return self._public(verb, path[len(PUBLIC_PREFIX) :], status, query)
        if verb != "POST":
            return Reply.html(405, allow="POST")
        reply = self._private(path, ks, headers, body, status)
        if self.journal is not None:
            self.journal.record(ks, body, reply.body, arrived)
        return reply

    def _delay(self, latency_ms: tuple[float, float]) -> None:
        lo, hi = latency_ms
        if hi <= 0:
            return
        with self._rng_lock:
            delay = self._rng.uniform(lo, hi)
        self.stopping.wait(delay / 1000.0)

    def _public(self, verb: str, method: str, status: str, query: str) -> Reply:
        if verb != "GET":
            return Reply.html(405, allow="GET")
        if method in MARKET_METHODS:
            result = self.market.result(method, query)
            return Reply.error(result) if isinstance(result, str) else Reply.ok(result)
        if method not in PUBLIC_METHODS:
            return Reply.error("EGeneral:Unknown method")
        return Reply.ok(public_result(method, status, self.state.now()))

    def _private(
        self, path: str, ks: KeyState | None, headers: Mapping[str, str], body: bytes, status: str
    ) -> Reply:
        method = path[len(PRIVATE_PREFIX) :]
        if status == "maintenance":
            self.state.finish(ks, ok=False)
            return Reply.error("EService:Unavailable")
        permission = PRIVATE_METHODS.get(method)
        if permission is None:
            self.state.finish(ks, ok=False)
            return Reply.error("EGeneral:Unknown method")
        content_type = headers.get("content-type", _FORM_TYPE).split(";")[0].strip().lower()
        if ks is not None and content_type != _FORM_TYPE:
            self.state.finish(ks, ok=False)
            return Reply.error("EGeneral:Invalid arguments:body must be form-encoded")
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        nonces = [value for name, value in pairs if name == "nonce"]
        sig_ok = ks is not None and signature_ok(
            ks.secret, path, nonces[0] if nonces else "", body, headers.get("api-sign", "")
        )
        try:
            error = self.state.judge(
                ks,
                signature_ok=sig_ok,
                nonce_values=nonces,
                cost=call_cost(method),
                permission=permission,
            )
        except OSError:  # the state file could not be written
            self.state.finish(ks, ok=False)
            return Reply.error("EGeneral:Internal error")
        if error is not None:
            return Reply.error(error)
        assert ks is not None
        fields: dict[str, str] = {}
        for name, value in pairs:
            fields.setdefault(name, value)
        if self.api is not None and self.api.handles(method, fields):
            result = self.api.result(method, fields, ks, status)
        else:
            result = private_result(method, fields, ks.balances, status, self.market.usd_price)
        if isinstance(result, str):
            self.state.finish(ks, ok=False, error=result)
            return Reply.error(result)
        self.state.finish(ks, ok=True)
        return Reply.ok(result)

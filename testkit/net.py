"""Ports, HTTP probes and waiting: the loopback plumbing of every test that runs a server."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["eventually", "free_port", "http_get", "http_json", "status_of"]

T = TypeVar("T")


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(
    url: str, timeout: float = 10.0, headers: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """(status, content type, body) of a GET, also for 4xx/5xx answers; ``OSError`` when nothing
    answers."""
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 (loopback)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return (
                response.status,
                response.headers.get("Content-Type", ""),
                response.read().decode(),
            )
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read().decode()


def http_json(
    url: str,
    method: str = "GET",
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 15.0,
) -> tuple[int, Any]:
    """(status, decoded JSON body, or the text of a body that is not JSON) of a request whose
    ``body`` is sent as JSON (``bytes`` as they are; ``Content-Type: application/json`` unless
    ``headers`` say otherwise), also for 4xx/5xx answers."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    sent = {"Content-Type": "application/json"} if data is not None else {}
    sent.update(headers or {})
    request = urllib.request.Request(url, data=data, method=method, headers=sent)  # noqa: S310 (loopback)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


def status_of(url: str, timeout: float = 2.0) -> int:
    """The HTTP status of a GET to ``url``, or 0 when nothing answers (a readiness probe)."""
    try:
        return http_get(url, timeout)[0]
    except OSError:
        return 0


def eventually(
    probe: Callable[[], T | None],
    timeout: float = 30.0,
    interval: float = 0.05,
    *,
    what: str = "the condition",
    on_timeout: Callable[[], str] | None = None,
) -> T:
    """Call ``probe`` until it returns something truthy (the awaited event) and return that; fail
    with ``what`` (and whatever ``on_timeout`` adds, e.g. a process log) after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() >= deadline:
            extra = f"\n{on_timeout()}" if on_timeout else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{extra}")
        time.sleep(interval)
